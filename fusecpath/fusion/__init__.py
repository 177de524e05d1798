"""The FuseCPath fusion engine: multi-view clustering, bags, CR²T re-embedding, collaborative
distillation, baselines and cross-validated evaluation (``fuse``)."""

from __future__ import annotations

from fusecpath.fusion.bags import make_bags
from fusecpath.fusion.cluster import multiview_cluster
from fusecpath.fusion.fuse import FuseOptions, FuseResult, fuse
from fusecpath.fusion.model import FusedModel
from fusecpath.fusion.predict import SlidePrediction, predict_slide

__all__ = [
    "FuseOptions",
    "FuseResult",
    "FusedModel",
    "SlidePrediction",
    "fuse",
    "make_bags",
    "multiview_cluster",
    "predict_slide",
]
