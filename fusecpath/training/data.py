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

    def concat(self, fms: list[str]) -> np.ndarray:
        """(N, sum D) the chosen patch FMs side by side, in the given order."""
        return np.concatenate([self.patch[fm] for fm in fms], axis=1).astype(np.float32, copy=False)


Cohort = dict[str, SlideData]
