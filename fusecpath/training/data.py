"""A cohort's features in memory: per slide, patch features per FM, slide embeddings, coords, clusters."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SlideData:
    slide_id: str
    coords: np.ndarray  # (N, 2) level-0 top-left corners
    patch: dict[str, np.ndarray]  # patch FM -> (N, D) float32
    slide: dict[str, np.ndarray] = field(default_factory=dict)  # slide FM -> (D,) float32
    clusters: np.ndarray | None = None  # (N,) multi-view cluster labels
    patch_size_level0: float | None = None
    _concat: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def concat(self, fms: list[str]) -> np.ndarray:
        """(N, sum D) the chosen patch FMs side by side, in the given order; computed once and shared by
        every method that asks (one copy a slide, however many baselines use it)."""
        key = tuple(fms)
        if key not in self._concat:
            parts = [self.patch[fm].astype(np.float32, copy=False) for fm in fms]
            self._concat[key] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        return self._concat[key]


Cohort = dict[str, SlideData]
