"""Synthetic data with a known truth: pixel-level slide cohorts (``slides``), feature-level cohorts
(``features``) and multi-view blobs for clustering (``blobs``). Nothing here is imported by the core."""
