"""A synthetic H&E cohort with a known ground truth, for the demo, the tests and the benchmarks.

Each slide is a real pyramidal file (Aperio SVS or generic tiled TIFF, JPEG tiles, mpp in the
metadata) of H&E-like tissue: glass, eosin-pink stroma with sparse nuclei, and epithelium with dense
hematoxylin nuclei. The class signal is a multiple-instance problem split across two cues:

- colour cue: a region of epithelium whose chroma is shifted at constant luminance (the grey image is
  unchanged, so a colour-blind texture encoder such as gabor-texture cannot see it; hed-stain can);
- texture cue: a region of epithelium whose nuclei are arranged in oriented bands instead of isotropic
  blobs, with the same stain densities and the same nuclear fraction (so the colour statistics of
  hed-stain barely change; gabor-texture sees it).

Two designs (``design``), built so that no linear rule on mean features and at best a partial
single-encoder rule tells the classes apart (they show what fusion can do, not what it does on real slides):

- ``joint`` (default): every slide carries both cues on the same share of its tissue. In positives they
  fall on the same cells (one region both shifted in colour and banded); in negatives they sit in two
  separate regions. Only a model that reads colour and texture *of the same patch* together separates
  the classes: fusion at patch level (FuseCPath, and ABMIL on concatenated features alike).
- ``regions``: positives carry one colour region and one texture region; negatives two colour regions
  or two texture regions (alternately), all drawn with the same radius. No patch differs between the
  classes and the cue areas match on average; one encoder can tell "my cue is present" (AUROC up to 0.75:
  the negatives without it), but separating the classes fully takes a model that relates a region seen
  by one encoder to a region seen by the other (FuseCPath's cross-cluster attention; ABMIL scores each
  patch on its own). This is the ``make demo`` cohort.

``ground_truth.json`` lists, per slide, the label, the cue regions (level-0 bounding boxes and
polygons) and the fraction of tissue they cover; ``truth/<slide>.png`` is a low-resolution label map
(one class index per pixel, see CLASSES); ``patch_truth`` turns it into the majority class of each patch.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from fusecpath.errors import FusecpathError
from fusecpath.files import replacing, write_atomic, write_csv

CLASSES = ("glass", "stroma", "epithelium", "colour_cue", "texture_cue", "joint_cue")
GLASS, STROMA, EPITHELIUM, COLOUR_CUE, TEXTURE_CUE, JOINT_CUE = range(len(CLASSES))
CUES = {COLOUR_CUE: "colour", TEXTURE_CUE: "texture", JOINT_CUE: "joint"}
CELL_UM = 16.0  # µm per pixel of the label map
TILE = 256  # TIFF tile side
FIELD_UM = 256.0  # period of the texture fields, µm
BAND_RATIO = (
    0.885  # band wavelength / nucleus spacing: equal edge length per area, so colour statistics match
)
EDGE_SLOPE = 8.0  # nuclear edge sharpness (per unit of the standardised field)
# Optical density of one unit of hematoxylin and of eosin (Ruifrok-Johnston directions), ln units.
H_OD = np.array([0.65, 0.70, 0.29]) / np.linalg.norm([0.65, 0.70, 0.29]) * 2.3
E_OD = np.array([0.07, 0.99, 0.11]) / np.linalg.norm([0.07, 0.99, 0.11]) * 2.3
RESIDUAL_OD = np.array([0.27, 0.57, 0.78]) / np.linalg.norm([0.27, 0.57, 0.78])  # off the H-E plane
LUMA = np.array([0.299, 0.587, 0.114])
# The cue regions of each kind of slide, and per design the kinds of each class (cycled over its slides).
REGIONS = {
    "joint": (JOINT_CUE,),
    "separate": (COLOUR_CUE, TEXTURE_CUE),
    "colour-twice": (COLOUR_CUE, COLOUR_CUE),
    "texture-twice": (TEXTURE_CUE, TEXTURE_CUE),
}
DESIGNS = {
    "joint": {1: ("joint",), 0: ("separate",)},
    "regions": {1: ("separate",), 0: ("colour-twice", "texture-twice")},
}
GENERATOR = "fusecpath-synth 4"  # changes whenever the same seed and options would give other slides


@dataclass(frozen=True)
class SynthOptions:
    """How the cohort looks. Sizes are physical so slides at different mpp show the same tissue."""

    mpp: float | tuple[float, ...] = 0.5  # level-0 µm/px; a tuple is cycled over the slides
    formats: tuple[str, ...] = ("svs", "tiff")  # cycled over the slides
    width_um: float = 2300.0
    height_um: float = 1800.0
    tissue_fraction: float = 0.6  # of the slide area
    epithelium_fraction: float = 0.4  # of the tissue
    cue_fraction: float = 0.08  # of the tissue, for each cue region
    colour_shift: float = 18.0  # RGB levels of the chroma shift (larger clips and leaks into grey)
    quality: int = 85  # JPEG quality
    design: str = "joint"  # a key of DESIGNS
    workers: int = 0  # processes writing slides (0: one a CPU, at most 4)

    def __post_init__(self) -> None:
        mpps = self.mpp if isinstance(self.mpp, tuple) else (self.mpp,)
        if not mpps or any(not (0.05 <= m <= 20) for m in mpps):
            raise FusecpathError(f"synth: mpp must be between 0.05 and 20 µm/px, not {self.mpp}")
        if not self.formats or any(f not in ("svs", "tiff") for f in self.formats):
            raise FusecpathError(f"synth: formats must be 'svs' and/or 'tiff', not {self.formats}")
        if not (0.05 <= self.tissue_fraction <= 0.95 and 0.0 < self.cue_fraction <= 0.3):
            raise FusecpathError(
                "synth: tissue_fraction must be in [0.05, 0.95] and cue_fraction in (0, 0.3]"
            )
        if self.design not in DESIGNS:
            raise FusecpathError(f"synth: design must be one of {', '.join(DESIGNS)}, not {self.design!r}")

    def mpp_for(self, index: int) -> float:
        mpps = self.mpp if isinstance(self.mpp, tuple) else (self.mpp,)
        return float(mpps[index % len(mpps)])


# ---------------------------------------------------------------------------------------------- textures


def _spectral_noise(rng: np.random.Generator, size: int, transfer) -> np.ndarray:
    """Periodic (seamless when tiled) noise with a given amplitude transfer in frequency, standardised."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    spectrum = np.fft.rfft2(rng.standard_normal((size, size))) * transfer(fx, fy)
    field = np.fft.irfft2(spectrum, s=(size, size))
    return ((field - field.mean()) / (field.std() + 1e-12)).astype(np.float32)


def _band(fx, fy, wavelength_px: float, width: float = 0.35):
    f0 = 1.0 / wavelength_px
    r = np.hypot(fx, fy)
    return np.exp(-0.5 * ((r - f0) / (width * f0)) ** 2)


@dataclass(frozen=True)
class Fields:
    """Periodic texture fields at one level-0 mpp (period ``size`` px)."""

    size: int
    nuclei: np.ndarray  # isotropic blobs, standardised
    bands: np.ndarray  # oriented bands of the texture cue, standardised like ``nuclei``
    fibres: np.ndarray  # stroma fibres, in [0, 1]
    grain: np.ndarray  # fine noise, standardised
    stain: np.ndarray  # (4, size, size) slow variation of hematoxylin, eosin, residual tint and nuclear
    # density, standardised


@lru_cache(maxsize=8)
def texture_fields(mpp: float, seed: int) -> Fields:
    size = max(64, int(round(FIELD_UM / mpp / 16.0)) * 16)
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, math.pi)
    c, s = math.cos(angle), math.sin(angle)

    def oriented(wavelength_px: float):  # energy along one direction: parallel bands of nuclei
        def transfer(fx, fy):
            along, across = fx * c + fy * s, -fx * s + fy * c
            return _band(along, 0.0, wavelength_px, 0.3) * np.exp(-0.5 * (across * 40.0 / mpp) ** 2)

        return transfer

    # Nuclear spacing drifts between 6.5 and 12 µm across the tissue, in both patterns alike.
    weight = 1.0 / (
        1.0 + np.exp(-2.0 * _spectral_noise(rng, size, lambda fx, fy: _band(fx, fy, size / 1.5, 0.8)))
    )
    norm = np.sqrt(weight**2 + (1 - weight) ** 2)
    fine, coarse = 6.5 / mpp, 12.0 / mpp
    nuclei = (
        weight * _spectral_noise(rng, size, lambda fx, fy: _band(fx, fy, fine))
        + (1 - weight) * _spectral_noise(rng, size, lambda fx, fy: _band(fx, fy, coarse))
    ) / norm
    bands = (
        weight * _spectral_noise(rng, size, oriented(fine * BAND_RATIO))
        + (1 - weight) * _spectral_noise(rng, size, oriented(coarse * BAND_RATIO))
    ) / norm
    fibre = _spectral_noise(rng, size, lambda fx, fy: _band(fx * 0.4, fy, 20.0 / mpp, 0.6))
    fibres = 1.0 / (1.0 + np.exp(-2.0 * fibre))
    grain = _spectral_noise(rng, size, lambda fx, fy: np.ones_like(fx * fy))
    slow = np.stack(
        [_spectral_noise(rng, size, lambda fx, fy: _band(fx, fy, size / 1.5, 0.8)) for _ in range(4)]
    )
    return Fields(
        size, nuclei.astype(np.float32), bands.astype(np.float32), fibres.astype(np.float32), grain, slow
    )


def _tiled(field: np.ndarray, y0: int, height: int, width: int, offset: tuple[int, int]) -> np.ndarray:
    """Rows [y0, y0 + height) and columns [0, width) of the plane tiled with the periodic ``field``."""
    size = field.shape[0]
    rows = field[(np.arange(y0, y0 + height) + offset[0]) % size]
    rows = np.roll(rows, -(offset[1] % size), axis=1)
    return np.tile(rows, (1, width // size + 1))[:, :width]


# ---------------------------------------------------------------------------------------------- label map


@dataclass
class SlidePlan:
    """Everything that decides a slide's pixels; small enough to send to a worker process."""

    slide_id: str
    path: str
    fmt: str
    mpp: float
    width: int
    height: int
    label: int
    kind: str  # a key of REGIONS
    seed: int
    cohort_seed: int
    colour_shift: float
    quality: int
    stain_h: float = 1.0  # this slide's hematoxylin and eosin strength (a scanner/lab batch effect)
    stain_e: float = 1.0
    tint: float = 0.03  # this slide's mean residual tint (OD)
    density: float = 0.0  # this slide's shift of the nuclear threshold (N(0, 1) units; + is sparser)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-12)


def label_map(
    shape: tuple[int, int], kind: str, rng: np.random.Generator, options: SynthOptions
) -> np.ndarray:
    """(H, W) uint8 class per CELL_UM cell: tissue blob(s), epithelium islands, the cue regions."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    envelope = -(((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2) * 1.5
    tissue_score = _smooth_field(rng, shape, max(h, w) / 10) + envelope
    tissue = tissue_score > np.quantile(tissue_score, 1 - options.tissue_fraction)
    tissue = ndimage.binary_opening(tissue, iterations=2)
    labels = np.where(tissue, STROMA, GLASS).astype(np.uint8)
    epi_score = _smooth_field(rng, shape, 5.0)
    epithelium = tissue & (epi_score > np.quantile(epi_score[tissue], 1 - options.epithelium_fraction))
    labels[epithelium] = EPITHELIUM
    cues = REGIONS[kind]
    radius = math.sqrt(options.cue_fraction * tissue.sum() / math.pi)
    inner = ndimage.binary_erosion(tissue, iterations=max(1, int(radius * 0.6)))
    candidates = np.argwhere(inner if inner.any() else tissue)
    placed: list[np.ndarray] = []
    for cue in cues:
        for _ in range(200):  # a centre far enough from the cue placed before
            centre = candidates[rng.integers(len(candidates))]
            if all(np.hypot(*(centre - p)) > 2.4 * radius for p in placed):
                break
        placed.append(centre)
        blob = ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) < radius**2
        labels[blob & tissue] = cue
    return labels


def _luma_free(direction: Sequence[float]) -> np.ndarray:
    d = np.asarray(direction, dtype=np.float64)
    d = d - (d @ LUMA) / (LUMA @ LUMA) * LUMA
    return d / np.abs(d).max()


COLOUR_DIRECTION = _luma_free((1.0, -0.1, -1.0))  # towards orange, grey level unchanged


# ---------------------------------------------------------------------------------------------- rendering


# Per class: hematoxylin amplitude and floor, nuclear threshold (top 30% / top 8% of N(0, 1)), eosin.
_H_AMP = np.array([0.0, 0.5, 0.55, 0.55, 0.55, 0.55], np.float32)
_H_FLOOR = np.array([0.0, 0.02, 0.06, 0.06, 0.06, 0.06], np.float32)
_THRESHOLD = np.array([9.0, 1.405, 0.524, 0.524, 0.524, 0.524], np.float32)
_E_BASE = np.array([0.01, 0.16, 0.22, 0.22, 0.22, 0.22], np.float32)
_E_FIBRE = np.array([0.0, 0.22, 0.0, 0.0, 0.0, 0.0], np.float32)
_GRAIN = np.array([0.015, 0.035, 0.035, 0.035, 0.035, 0.035], np.float32)
_COLOURED = np.array([0, 0, 0, 1, 0, 1], np.float32)  # classes with the chroma shift
_BANDED = np.array([0, 0, 0, 0, 1, 1], bool)  # classes with oriented bands of nuclei
STAIN_VARIATION = 0.2  # relative spread of stain uptake across the tissue
DENSITY_VARIATION = 0.25  # spread of the nuclear threshold across the tissue (N(0, 1) units)
SLIDE_DENSITY_VARIATION = 0.3  # spread of the nuclear threshold between slides
SLIDE_STAIN_VARIATION = 0.12  # relative spread of stain strength between slides
RESIDUAL_VARIATION = 0.06  # OD spread of a tint off the H-E plane (section thickness, mounting, ...)
RENDER_MPP = 0.5  # slides finer than this are rendered at an integer multiple of their mpp and upsampled


def _render_scale(mpp: float) -> int:
    return max(1, round(RENDER_MPP / mpp)) if mpp < RENDER_MPP else 1


def _render(plan: SlidePlan, labels: np.ndarray, r0: int, r1: int, width: int, scale: int) -> np.ndarray:
    """Rows [r0, r1) (may reach outside the slide) of the slide rendered at ``mpp * scale``."""
    mpp = plan.mpp * scale
    fields = texture_fields(mpp, plan.cohort_seed)
    rng = np.random.default_rng([plan.seed, 1])
    offsets = [tuple(int(v) for v in rng.integers(0, fields.size, 2)) for _ in range(8)]
    height = r1 - r0
    cell = CELL_UM / mpp
    rows = np.clip(((np.arange(r0, r1) + 0.5) / cell).astype(np.int64), 0, labels.shape[0] - 1)
    cols = np.minimum(((np.arange(width) + 0.5) / cell).astype(np.int64), labels.shape[1] - 1)
    cls = labels[rows][:, cols]
    pattern = _tiled(fields.nuclei, r0, height, width, offsets[0])
    texture = _BANDED[cls]
    if texture.any():
        np.copyto(pattern, _tiled(fields.bands, r0, height, width, offsets[1]), where=texture)
    # hematoxylin: a soft threshold of the nuclear pattern, per class, at a nuclear density that drifts
    pattern -= _THRESHOLD[cls]
    pattern -= _tiled(fields.stain[3], r0, height, width, offsets[7]) * DENSITY_VARIATION
    pattern -= np.float32(plan.density)
    pattern *= EDGE_SLOPE
    pattern += 0.5
    np.clip(pattern, 0.0, 1.0, out=pattern)
    c_h = pattern
    c_h *= _H_AMP[cls]
    c_h += _H_FLOOR[cls]
    c_h *= _tiled(fields.stain[0], r0, height, width, offsets[4]) * STAIN_VARIATION + plan.stain_h
    c_e = _tiled(fields.fibres, r0, height, width, offsets[2])
    c_e *= _E_FIBRE[cls]
    c_e += _E_BASE[cls]
    c_e *= _tiled(fields.stain[1], r0, height, width, offsets[5]) * STAIN_VARIATION + plan.stain_e
    grain = _tiled(fields.grain, r0, height, width, offsets[3])
    grain *= _GRAIN[cls]
    tint = _tiled(fields.stain[2], r0, height, width, offsets[6])
    tint *= RESIDUAL_VARIATION
    tint += plan.tint
    tint *= cls != GLASS
    rgb = np.empty((height, width, 3), np.uint8)
    colour = _COLOURED[cls] * np.float32(plan.colour_shift)
    for c in range(3):
        od = c_h * np.float32(H_OD[c])
        od += c_e * np.float32(E_OD[c])
        od += grain
        od += tint * np.float32(RESIDUAL_OD[c])
        np.maximum(od, 0.0, out=od)
        np.negative(od, out=od)
        np.exp(od, out=od)
        od *= 250.0
        od += 0.5
        od += colour * np.float32(COLOUR_DIRECTION[c])
        np.clip(od, 0, 255, out=od)
        rgb[..., c] = od
    return rgb


def render_strip(plan: SlidePlan, labels: np.ndarray, y0: int, height: int) -> np.ndarray:
    """Level-0 rows [y0, y0 + height) of the slide: (height, width, 3) uint8."""
    k = _render_scale(plan.mpp)
    if k == 1:
        return _render(plan, labels, y0, y0 + height, plan.width, 1)
    r0, r1 = y0 // k - 1, -(-(y0 + height) // k) + 1  # one row of margin on each side: no seams
    coarse = _render(plan, labels, r0, r1, -(-plan.width // k), k)
    fine = Image.fromarray(coarse).resize(
        (coarse.shape[1] * k, coarse.shape[0] * k), Image.Resampling.BILINEAR
    )
    top = y0 - r0 * k
    return np.asarray(fine)[top : top + height, : plan.width]


def _downsample(image: np.ndarray, factor: int) -> np.ndarray:
    h, w = image.shape[0] // factor, image.shape[1] // factor
    return np.asarray(Image.fromarray(image[: h * factor, : w * factor]).reduce(factor))


def write_slide(plan: SlidePlan, labels: np.ndarray) -> None:
    """Render and write the pyramid strip by strip (memory: level 1 and below, plus one strip)."""
    import tifffile

    factor = 4 if plan.fmt == "svs" else 2
    level1 = np.zeros((plan.height // factor, plan.width // factor, 3), np.uint8)

    def tiles() -> Iterator[np.ndarray]:
        for y0 in range(0, plan.height, TILE):
            h = min(TILE, plan.height - y0)
            strip = render_strip(plan, labels, y0, h)
            r0 = y0 // factor
            down = _downsample(strip, factor)
            level1[r0 : r0 + down.shape[0]] = down[: level1.shape[0] - r0]
            padded = np.full((TILE, -(-plan.width // TILE) * TILE, 3), 255, np.uint8)
            padded[:h, : plan.width] = strip
            for x0 in range(0, plan.width, TILE):
                yield padded[:, x0 : x0 + TILE]

    n_levels, side = 1, min(level1.shape[:2])
    while side // factor >= 256:
        n_levels, side = n_levels + 1, side // factor
    common = dict(
        tile=(TILE, TILE),
        compression="jpeg",
        compressionargs={"level": plan.quality},
        photometric="rgb",
        metadata=None,
    )
    mag = 10.0 / plan.mpp
    with replacing(plan.path) as tmp:
        with tifffile.TiffWriter(tmp, bigtiff=plan.width * plan.height > 2**31) as tif:
            if plan.fmt == "svs":
                description = (
                    f"Aperio Image Library fusecpath-synth\r\n{plan.width}x{plan.height} "
                    f"[0,0 {plan.width}x{plan.height}] ({TILE}x{TILE}) JPEG/RGB Q={plan.quality}"
                    f"|AppMag = {mag:g}|MPP = {plan.mpp}|Filename = {plan.slide_id}"
                )
                tif.write(
                    tiles(),
                    shape=(plan.height, plan.width, 3),
                    dtype=np.uint8,
                    description=description,
                    **common,
                )
            else:
                resolution = (1e4 / plan.mpp, 1e4 / plan.mpp)
                tif.write(
                    tiles(),
                    shape=(plan.height, plan.width, 3),
                    dtype=np.uint8,
                    resolution=resolution,
                    resolutionunit="CENTIMETER",
                    **common,
                )
            image = level1
            for i in range(n_levels):
                if i > 0:
                    image = _downsample(image, factor)
                w, h = image.shape[1], image.shape[0]
                extra = (
                    {
                        "description": f"Aperio Image Library fusecpath-synth\r\n{plan.width}x{plan.height} -> {w}x{h}"
                    }
                    if plan.fmt == "svs"
                    else {
                        "resolution": (1e4 / plan.mpp / factor ** (i + 1),) * 2,
                        "resolutionunit": "CENTIMETER",
                        "subfiletype": 1,
                    }
                )
                tif.write(image, **common, **extra)


# ---------------------------------------------------------------------------------------------- cohort


def _region_entries(labels: np.ndarray, plan: SlidePlan) -> list[dict[str, Any]]:
    from fusecpath.slides.tissue import mask_polygons

    cell = CELL_UM / plan.mpp
    tissue = int((labels != GLASS).sum())
    regions = []
    for cue, name in CUES.items():
        mask = labels == cue
        if not mask.any():
            continue
        rows, cols = np.nonzero(mask)
        polygons = mask_polygons(mask, cell)
        regions.append(
            {
                "cue": name,
                "class": CLASSES[cue],
                "box_level0": [
                    int(cols.min() * cell),
                    int(rows.min() * cell),
                    int(math.ceil((cols.max() + 1) * cell)),
                    int(math.ceil((rows.max() + 1) * cell)),
                ],
                "polygons_level0": [[np.round(ring, 1).tolist() for ring in poly] for poly in polygons],
                "tissue_fraction": round(float(mask.sum()) / max(1, tissue), 4),
            }
        )
    return regions


def _make_one(plan: SlidePlan, options: SynthOptions, truth_dir: str) -> dict[str, Any]:
    rng = np.random.default_rng(plan.seed)
    shape = (max(8, round(options.height_um / CELL_UM)), max(8, round(options.width_um / CELL_UM)))
    labels = label_map(shape, plan.kind, rng, options)
    write_slide(plan, labels)
    Image.fromarray(labels).save(Path(truth_dir) / f"{plan.slide_id}.png")
    cell = CELL_UM / plan.mpp
    return {
        "slide_id": plan.slide_id,
        "file": Path(plan.path).name,
        "format": plan.fmt,
        "label": plan.label,
        "cues": plan.kind,
        "mpp": plan.mpp,
        "width": plan.width,
        "height": plan.height,
        "label_map": f"truth/{plan.slide_id}.png",
        "label_map_downsample": cell,
        "tissue_fraction_of_slide": round(float((labels != GLASS).mean()), 4),
        "regions": _region_entries(labels, plan),
    }


def _plans(out: Path, n_slides: int, seed: int, options: SynthOptions) -> list[tuple[SlidePlan, str]]:
    rng = np.random.default_rng(seed)
    n_pairs = n_slides // 7  # about one patient in six has two slides
    patients = [(f"SYN-{i:03d}", 2 if i < n_pairs else 1) for i in range(n_slides - n_pairs)]
    labels = rng.permutation([i % 2 for i in range(len(patients))])
    rows = []
    for (patient, count), label in zip(patients, labels, strict=True):
        kinds = DESIGNS[options.design][int(label)]
        for k in range(count):
            done = sum(1 for row in rows if row[2] == label)  # this class's slides so far: kinds alternate
            rows.append((patient, k, int(label), kinds[done % len(kinds)]))
    plans = []
    for index, (patient, k, label, kind) in enumerate(rows):
        fmt = options.formats[index % len(options.formats)]
        mpp = options.mpp_for(index)
        sid = f"{patient}-{chr(ord('A') + k)}"
        plan = SlidePlan(
            slide_id=sid,
            path=str(out / f"{sid}.{fmt}"),
            fmt=fmt,
            mpp=mpp,
            width=int(round(options.width_um / mpp)),
            height=int(round(options.height_um / mpp)),
            label=label,
            kind=kind,
            seed=int(rng.integers(2**31)),
            cohort_seed=seed,
            colour_shift=options.colour_shift,
            quality=options.quality,
            stain_h=float(1 + SLIDE_STAIN_VARIATION * rng.uniform(-1, 1)),
            stain_e=float(1 + SLIDE_STAIN_VARIATION * rng.uniform(-1, 1)),
            tint=float(rng.uniform(0.0, 0.06)),
            density=float(SLIDE_DENSITY_VARIATION * rng.uniform(-1, 1)),
        )
        plans.append((plan, patient))
    return plans


def make_cohort(out: str | Path, n_slides: int, seed: int = 0, **options: Any) -> Path:
    """Write ``n_slides`` synthetic slides, ``labels.csv`` (slide_id,label,patient_id),
    ``ground_truth.json`` and ``truth/<slide>.png`` into ``out``; returns the labels.csv path.
    ``options`` are SynthOptions fields (mpp, formats, width_um, height_um, cue_fraction, ...)."""
    if n_slides < 1:
        raise FusecpathError("synth: --slides must be at least 1")
    unknown = set(options) - set(SynthOptions.__dataclass_fields__)
    if unknown:
        raise FusecpathError(f"synth: unknown option(s) {', '.join(sorted(unknown))}")
    if isinstance(options.get("mpp"), list):
        options["mpp"] = tuple(options["mpp"])
    if isinstance(options.get("formats"), (list, str)):
        options["formats"] = tuple(
            [options["formats"]] if isinstance(options["formats"], str) else options["formats"]
        )
    opts = SynthOptions(**options)
    out = Path(out)
    truth_dir = out / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    plans = _plans(out, n_slides, seed, opts)
    workers = opts.workers or min(4, os.cpu_count() or 1)
    if workers > 1 and len(plans) > 1:
        with ProcessPoolExecutor(workers) as pool:
            truths = list(
                pool.map(_make_one, [p for p, _ in plans], [opts] * len(plans), [str(truth_dir)] * len(plans))
            )
    else:
        truths = [_make_one(p, opts, str(truth_dir)) for p, _ in plans]
    truth = {
        "generator": GENERATOR,
        "seed": seed,
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(opts).items()},
        "classes": list(CLASSES),
        "design": opts.design,
        "kinds": {
            str(label): {kind: [CLASSES[c] for c in REGIONS[kind]] for kind in kinds}
            for label, kinds in DESIGNS[opts.design].items()
        },
        "slides": {t["slide_id"]: t for t in truths},
    }
    write_atomic(out / "ground_truth.json", json.dumps(truth, indent=1))
    lines = [("slide_id", "label", "patient_id")] + [
        (p.slide_id, str(p.label), patient) for p, patient in plans
    ]
    return write_csv(out / "labels.csv", [dict(zip(lines[0], row, strict=True)) for row in lines[1:]])


# ---------------------------------------------------------------------------------------------- truth


@lru_cache(maxsize=64)
def _truth(cohort_dir: str, slide_id: str) -> tuple[np.ndarray, float]:
    truth = json.loads((Path(cohort_dir) / "ground_truth.json").read_text())
    try:
        entry = truth["slides"][slide_id]
    except KeyError:
        raise FusecpathError(f"{slide_id!r} is not a slide of the synthetic cohort in {cohort_dir}") from None
    labels = np.asarray(Image.open(Path(cohort_dir) / entry["label_map"]))
    return labels, float(entry["label_map_downsample"])


def patch_truth(
    cohort_dir: str | Path, slide_id: str, coords: np.ndarray, patch_size_level0: float
) -> np.ndarray:
    """The majority class (index into CLASSES) of each patch, from the slide's label map.

    ``coords`` are (N, 2) level-0 top-left corners of square patches ``patch_size_level0`` wide."""
    labels, cell = _truth(str(Path(cohort_dir).resolve()), slide_id)
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    out = np.zeros(len(coords), np.int64)
    h, w = labels.shape
    for i, (x, y) in enumerate(coords):
        c0, r0 = int(x // cell), int(y // cell)
        c1, r1 = (
            int(math.ceil((x + patch_size_level0) / cell)),
            int(math.ceil((y + patch_size_level0) / cell)),
        )
        window = labels[min(r0, h - 1) : max(min(r1, h), r0 + 1), min(c0, w - 1) : max(min(c1, w), c0 + 1)]
        out[i] = np.bincount(window.ravel(), minlength=len(CLASSES)).argmax()
    return out
