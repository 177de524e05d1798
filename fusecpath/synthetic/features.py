"""Feature-level synthetic cohorts: feature stores written directly, for fusion tests that need no slides."""

from __future__ import annotations

from pathlib import Path


def write_feature_store(store: Path, n_slides: int = 12, n_patches: int = 48, seed: int = 0) -> Path:
    """A small feature store of ``hed-stain`` + ``gabor-texture`` patch features and ``mean-hed-stain``
    slide features, with labels.csv beside it; positives carry one cue in each FM's features, in
    separate patches. Returns labels.csv. For tests of fusion that need no slides."""
    import numpy as np

    from fusecpath.api import get_spec
    from fusecpath.features.store import FORMAT, VERSION, feature_path, updating

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_slides):
        sid, label = f"TCGA-AA-{i:04d}-01Z", i % 2
        hed, gabor = rng.standard_normal((n_patches, 32)), rng.standard_normal((n_patches, 32))
        if label:
            hed[:8, :4] += 3.0
            gabor[8:16, :4] += 3.0
        with updating(feature_path(store, sid), fresh=True) as out:
            out.attrs.update(format=FORMAT, version=VERSION, slide_id=sid)
            coords = np.stack([np.arange(n_patches) * 256, np.zeros(n_patches)], 1).astype(np.int64)
            out.create_dataset("coords", data=coords)
            out["coords"].attrs["patch_size_level0"] = 256
            for fm, x in (("hed-stain", hed), ("gabor-texture", gabor), ("mean-hed-stain", hed.mean(0))):
                name = f"{'slide' if x.ndim == 1 else 'patch'}/{fm}"
                out.create_dataset(name, data=x.astype(np.float32))
                out[name].attrs["fingerprint"] = get_spec(fm).fingerprint()
        rows.append(f"{sid},{'neg pos'.split()[label]}\n")
    labels = store.parent / "labels.csv"
    labels.write_text("slide_id,label\n" + "".join(rows))
    return labels
