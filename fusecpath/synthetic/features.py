"""Feature-level synthetic cohorts: heterogeneous FM views of simulated tissue, written as feature files.

Every patch has a tissue state and a point in a shared latent space (``latent_dim`` dims): a state
prototype plus within-state variation. Each patch FM sees that point through its own random linear
map to its real width (the registry's ``embed_dim``: uni 1024, conch-v1.5 768, virchow2 2560, ...),
with its own per-dimension offsets, scales and noise, after removing the latent directions it is
blind to (``make_feature_cohort(..., design=...)`` decides which). Per-slide batch effects: a
3-dimensional stain shift of the site (TCGA tissue-source code, characters 6-7 of the id) plus one of
the slide, which every FM answers with its own response; sites differ in scanner magnification too. Patch counts vary by slide;
about ``multi_slide`` of the patients have two slides (``...-DX1``, ``...-DX2``; patient = the first
12 characters), sharing the patient's composition and label but not batch effects or patches.

Designs, and what each promises (``ground_truth.json`` records the latents behind every slide):

``complementary``
    One marker state per patch FM, each a look-alike of an ordinary state (stroma, lymphocytes, ...)
    that only that FM tells apart: FM *i* sees marker *i* and is blind to the others (they look like
    their ordinary twins to it). A marker and its twin fill a compartment whose size does not depend
    on the marker's share, so a blind FM learns nothing from the twin's share either. Slides differ a lot in how much marker tissue they hold overall (a
    shared burden ``c``) and a little in each marker's own share (``d_i``); the label is the sign of
    a zero-sum contrast of the marker fractions, which cancels ``c``. A single FM sees one fraction,
    dominated by the label-free burden, so it says little; together the FMs give the contrast, and a
    linear read-out of the concatenated mean-pooled features already has it (the classes are linearly
    separable in pooled space: no positive is a mixture of negatives). Promise: every FM alone is
    weak, every model given all FMs can be strong.
``subtypes``
    Positives carry a lesion (a few per cent of the patches) of one of several subtypes, one subtype
    per patch FM, chosen at random; every subtype looks like tumour to all FMs but its own (FM *i*
    sees subtype *i* and is blind to the others). Negatives have no lesion. The label is about
    presence, not proportions: a single FM finds only its own subtype's positives (about 1/k of
    them), all FMs together find every positive. Promise: every FM alone is weak, every model given
    all FMs can be strong, and the label is no linear read-out of mean-pooled features (a small
    lesion dilutes in the mean), so mean pooling gets no built-in advantage.
``redundant``
    One lesion state present in positives only (a few per cent of the patches), seen faintly by the
    first FM (a quarter of its shift, so that single-FM MIL does not saturate); the other FMs see it
    fainter still and through more noise. Promise: the first FM alone is about as good as all FMs
    together; the others are weaker; adding them must not hurt.
``teacher``
    A patient-level latent ``g`` behind the label (``label = g + label noise > 0``, so labels are
    noisy). Patch FMs see ``g`` only weakly: it shifts tumour patches a little, against their
    natural variation. A slide FM (the first of ``slide_fms``, by default a registered one whose
    ``requires`` is among ``fms``, e.g. ``titan`` for conch-v1.5; its features are simulated, as
    ground_truth.json says) embeds ``g`` cleanly, with the slide's composition and its stain.
    Promise: a linear probe of the slide FM beats the patch-only baselines, so distilling it into a
    patch model has something to teach; the patch features carry ``g`` only in the tumour patches,
    diluted by the rest, so a student that learnt to pool exactly those could approach the teacher.

Measured figures (simple baselines on each design) are in benchmarks/results/cohorts.json
(``benchmarks/cohorts.py --write``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fusecpath.errors import FusecpathError
from fusecpath.files import write_atomic, write_csv
from fusecpath.synthetic.layouts import trident_run_name, write_store_slide, write_trident_slide

DESIGNS = ("complementary", "subtypes", "redundant", "teacher")
LAYOUTS = ("trident", "store")
STATES = ("tumour", "stroma", "lymphocytes", "necrosis", "fat", "normal")
MULTI_MARKER = ("complementary", "subtypes")  # designs with one marker state per patch FM
SITES = ("A1", "B6", "C8", "D8", "E2", "GM", "AR", "BH")

# The cohorts' physics (benchmarks/cohorts.py measures what simple baselines make of it).
PROTOTYPE_SCALE = 2.0  # spread of the ordinary states' prototypes
QUIET = 0.3  # ordinary tissue's spread along the marker directions, relative to the others (1)
MARKER_SHIFT = 8.0  # how far a marker patch stands out along its own direction
COMPARTMENTS = 0.8  # complementary: the patches in the k marker compartments (marker + its twin)
BURDEN = 0.75  # complementary: the shared marker burden, at most this share of a compartment
CONTRAST_SD = 0.2  # complementary: spread of each marker's own share, relative to its compartment
LESION = (0.02, 0.10)  # redundant, subtypes: lesion fraction of a positive slide
REDUNDANT_STRONG = 0.25  # redundant: how much of the lesion direction the first FM sees (faint: unsaturated)
REDUNDANT_WEAK = 0.15  # redundant: how much of it the other FMs see
REDUNDANT_WEAK_NOISE = 0.6  # redundant: their per-dimension noise (the first FM's: 0.3)
TEACHER_SHIFT = 0.8  # teacher: tumour patches' shift along g's direction, per unit of g
TEACHER_SPREAD = 0.7  # teacher: tumour patches' natural spread along it
TEACHER_LABEL_NOISE = 0.5  # teacher: label = g + this * N(0, 1) > 0
TEACHER_SLIDE_G = 3.0  # teacher: g's weight in the slide FM's embedding
SITE_STAIN, SLIDE_STAIN = 0.8, 0.4  # batch effects: stain shift of a site and of a slide


class SynthError(FusecpathError):
    """A synthetic cohort that cannot be made as asked."""


def write_feature_store(store: Path, n_slides: int = 12, n_patches: int = 48, seed: int = 0) -> Path:
    """A small feature store of ``hed-stain`` + ``gabor-texture`` patch features and ``mean-hed-stain``
    slide features, with labels.csv beside it; positives carry one cue in each FM's features, in
    separate patches. Returns labels.csv. For tests of fusion that need no slides."""
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


# ---------------------------------------------------------------------------------------------- world


@dataclass
class _View:
    """How one FM sees the latent space."""

    name: str
    weights: np.ndarray  # (latent, D)
    offset: np.ndarray  # (D,)
    scale: np.ndarray  # (D,)
    stain: np.ndarray  # (n_stain, D): this FM's response to a stain shift
    keep: np.ndarray  # (n_markers,) per marker direction: 1 seen, 0 blind, in between attenuated
    noise: float


@dataclass
class _World:
    """The cohort-wide structure: state prototypes, marker directions and every FM's view."""

    prototypes: np.ndarray  # (n_states, latent), in the complement of the marker directions
    markers: np.ndarray  # (n_markers, latent) orthonormal marker directions
    views: list[_View]
    latent_dim: int


def _make_world(
    rng: np.random.Generator, fms: list[tuple[str, int]], latent_dim: int, n_markers: int
) -> _World:
    basis, _ = np.linalg.qr(rng.standard_normal((latent_dim, latent_dim)))
    markers, rest = basis[:, :n_markers].T, basis[:, n_markers:]
    prototypes = PROTOTYPE_SCALE * rng.standard_normal((len(STATES), rest.shape[1])) @ rest.T
    views = []
    for name, dim in fms:
        views.append(
            _View(
                name,
                rng.standard_normal((latent_dim, dim)) / np.sqrt(latent_dim),
                0.5 * rng.standard_normal(dim),
                np.exp(0.4 * rng.standard_normal(dim)),
                rng.standard_normal((3, dim)) / np.sqrt(3),
                np.ones(n_markers),
                0.3,
            )
        )
    return _World(prototypes, markers, views, latent_dim)


def _blind(view: _View, marker: int, factor: float = 0.0) -> None:
    """Make ``view`` see ``marker``'s direction scaled by ``factor`` (0: blind to it)."""
    view.keep[marker] = factor


def _render(
    world: _World, view: _View, latent: np.ndarray, stain: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(N, latent) latent points + (n_stain,) stain shift -> (N, D) float32 features of ``view``."""
    coeff = latent @ world.markers.T  # (N, n_markers)
    seen = (latent - (coeff * (1.0 - view.keep)) @ world.markers).astype(np.float32)
    x = seen @ view.weights.astype(np.float32) + (stain @ view.stain + view.offset).astype(np.float32)
    x += np.float32(view.noise) * rng.standard_normal(x.shape, dtype=np.float32)
    return x * view.scale.astype(np.float32)


# ---------------------------------------------------------------------------------------------- designs


@dataclass
class _Patient:
    pid: str
    site: str
    label: int
    mix: np.ndarray  # (n_states,) composition of ordinary states
    latents: dict[str, Any]  # design latents (for ground truth)
    marker_fractions: np.ndarray  # (n_markers,) fraction of patches in each marker state
    shift: float = 0.0  # teacher: tumour shift along the g marker
    compartments: np.ndarray | None = None  # complementary: share of marker + twin, per marker


def _contrast(k: int) -> np.ndarray:
    """A zero-sum contrast over ``k`` markers that every marker enters: (1, ..., 1, -(k-1)) / norm."""
    w = np.ones(k)
    w[-1] = -(k - 1)
    return w / np.linalg.norm(w)


def _patients(design: str, n: int, k: int, rng: np.random.Generator, label_noise: float) -> list[_Patient]:
    out = []
    w = _contrast(k) if design == "complementary" else np.zeros(k)
    for i in range(n):
        pid = f"TCGA-{SITES[rng.integers(len(SITES))]}-{i:04d}"
        mix = rng.dirichlet(np.full(len(STATES), 1.5))
        latents: dict[str, Any] = {}
        shift = 0.0
        compartments = None
        if design == "complementary":
            share = COMPARTMENTS / k
            compartments = rng.uniform(share - 0.05, share + 0.05, size=k)
            burden = rng.uniform(0.02, BURDEN * share)
            # each marker's own share; with 2 markers each FM sees half the contrast, so it is kept smaller
            spread = CONTRAST_SD * share * (k - 1) / 2
            d = spread * rng.standard_normal(k) / np.sqrt(np.abs(w) / np.abs(w).min())
            fractions = np.clip(burden + d, 0.0, compartments)
            score = float(w @ fractions)  # = w @ d up to clipping
            label = int(score > 0)
            latents = {"burden": burden, "d": d.tolist(), "contrast": score}
        elif design == "subtypes":
            label = int(rng.random() < 0.5)
            fractions = np.zeros(k)
            subtype = int(rng.integers(k)) if label else -1
            if label:
                fractions[subtype] = rng.uniform(*LESION)
            latents = {"subtype": subtype, "lesion_fraction": float(fractions.sum())}
        elif design == "redundant":
            label = int(rng.random() < 0.5)
            fraction = rng.uniform(*LESION) if label else 0.0
            fractions = np.array([fraction])
            latents = {"lesion_fraction": fraction}
        else:  # teacher
            g = float(rng.standard_normal())
            label = int(g + TEACHER_LABEL_NOISE * rng.standard_normal() > 0)
            fractions = np.zeros(1)
            shift = TEACHER_SHIFT * g
            latents = {"g": g, "clean_label": int(g > 0)}
        if label_noise and rng.random() < label_noise:
            label = 1 - label
            latents["flipped"] = True
        out.append(_Patient(pid, pid[5:7], label, mix, latents, fractions, shift, compartments))
    return out


def _states(patient: _Patient, n: int, rng: np.random.Generator) -> np.ndarray:
    """Per-patch state: ordinary states 0..S-1, marker m as S + m; exact marker counts.

    With compartments (complementary), marker m and its twin share a compartment whose size does
    not depend on the marker's share, so an FM blind to the marker learns nothing from the twin's.
    """
    counts = np.round(patient.marker_fractions * n).astype(int)
    markers = np.repeat(len(STATES) + np.arange(len(counts)), counts)
    mix, fixed = patient.mix, np.zeros(0, dtype=int)
    if patient.compartments is not None:
        twins = np.array(_TWINS[: len(counts)])
        twin_counts = np.maximum(np.round(patient.compartments * n).astype(int) - counts, 0)
        fixed = np.repeat(twins, twin_counts)
        mix = mix.copy()
        mix[twins] = 0.0
        mix /= mix.sum()
    n_ordinary = max(n - len(markers) - len(fixed), 1)
    ordinary = rng.choice(len(STATES), size=n_ordinary, p=mix)
    return rng.permutation(np.concatenate([ordinary, fixed, markers]))[:n]


# marker m is a look-alike of ordinary state TWIN[m] (complementary) or of tumour (the other designs)
_TWINS = (1, 2, 3, 5, 4)


def _latent_points(
    world: _World, design: str, states: np.ndarray, patient: _Patient, rng: np.random.Generator
) -> np.ndarray:
    n_ord = len(STATES)
    twin = np.array(
        [_TWINS[m % len(_TWINS)] if design == "complementary" else 0 for m in range(len(world.markers))]
    )
    base = np.where(states < n_ord, states, twin[np.clip(states - n_ord, 0, len(twin) - 1)])
    h = world.prototypes[base] + 1.0 * rng.standard_normal((len(states), world.latent_dim))
    # marker directions are quiet for ordinary tissue; a marker patch stands out along its own
    coeff = h @ world.markers.T
    h -= (coeff * (1.0 - QUIET)) @ world.markers
    for m in range(len(world.markers)):
        is_m = states == n_ord + m
        h[is_m] += MARKER_SHIFT * world.markers[m]
    if design == "teacher":
        tumour = states == 0
        h[tumour] += patient.shift * world.markers[0]
        h[tumour] += TEACHER_SPREAD * rng.standard_normal((int(tumour.sum()), 1)) * world.markers[0]
    return h


def _slide_embedding(
    world: _World, view: _View, patient: _Patient, stain: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A simulated slide FM: the patient's g (cleanly), its composition and the slide's stain."""
    g = patient.latents.get("g", 0.0)
    latent = 0.3 * rng.standard_normal(world.latent_dim)
    latent += TEACHER_SLIDE_G * g * world.markers[0] + patient.mix @ world.prototypes
    x = latent @ view.weights + stain @ view.stain + view.noise * rng.standard_normal(view.weights.shape[1])
    return ((x + view.offset) * view.scale).astype(np.float32)


# ---------------------------------------------------------------------------------------------- cohort


_PAPER_SLIDE_FMS = ("titan", "prov-gigapath-slide", "prism")  # the paper's teachers first


def _default_slide_fms(design: str, fms: list[str]) -> list[str]:
    if design != "teacher":
        return []
    from fusecpath.plugins import get_registry

    specs = get_registry().list(level="slide")
    preferred = sorted(specs, key=lambda s: (s.name not in _PAPER_SLIDE_FMS, s.name))
    for spec in preferred:
        if spec.requires in fms and spec.source != "builtin":
            return [spec.name]
    raise SynthError(
        f"no registered slide FM requires one of {', '.join(fms)}; pass slide_fms=... (e.g. titan with conch-v1.5)"
    )


def _trident_names() -> tuple[dict[str, str], dict[str, str]]:
    from fusecpath.features.trident import TRIDENT_SLIDE_TO_ZOO, TRIDENT_TO_ZOO

    patch = {
        zoo: enc
        for enc, zoo in TRIDENT_TO_ZOO.items()
        if enc not in TRIDENT_SLIDE_TO_ZOO or enc == "gigapath"
    }
    slide = {zoo: enc for enc, zoo in TRIDENT_SLIDE_TO_ZOO.items()}
    return patch, slide


@dataclass
class SimSlide:
    """One simulated slide: features keyed by zoo FM name, coords, TRIDENT patching attributes, truth."""

    slide_id: str
    label: str
    patch: dict[str, np.ndarray]
    slide: dict[str, np.ndarray]
    coords: np.ndarray
    coords_attrs: dict[str, Any]
    truth: dict[str, Any]
    states: np.ndarray  # (N,) each patch's state: index into STATES, then the markers (not written)


@dataclass
class SimCohort:
    """A simulated cohort before it is written: its slides and the cohort-wide ground truth."""

    design: str
    slides: list[SimSlide]
    truth: dict[str, Any]


def simulate_cohort(
    design: str,
    n_slides: int = 100,
    seed: int = 0,
    fms: tuple[str, ...] = ("uni", "conch-v1.5", "virchow2"),
    slide_fms: tuple[str, ...] | None = None,
    patches: tuple[int, int] = (80, 240),
    multi_slide: float = 0.2,
    label_noise: float = 0.0,
    latent_dim: int = 48,
    magnification: int = 20,
    patch_px: int = 256,
) -> SimCohort:
    """Simulate a ``design`` cohort in memory (what :func:`make_feature_cohort` writes)."""
    from fusecpath.plugins import get_registry

    if design not in DESIGNS:
        raise SynthError(f"unknown design {design!r}; choose one of {', '.join(DESIGNS)}")
    registry = get_registry()
    specs = [registry.get(fm) for fm in fms]
    if any(s.level != "patch" for s in specs) or not specs:
        raise SynthError(f"fms must be patch FMs (got {', '.join(fms) or 'none'})")
    if design in MULTI_MARKER and not 2 <= len(specs) <= len(_TWINS):
        raise SynthError(f"the {design} design needs 2 to {len(_TWINS)} patch FMs, got {len(specs)}")
    names = [s.name for s in specs]
    slide_names = list(slide_fms) if slide_fms is not None else _default_slide_fms(design, names)
    slide_specs = [registry.get(fm) for fm in slide_names]
    if any(s.level != "slide" for s in slide_specs):
        raise SynthError(f"slide_fms must be slide FMs (got {', '.join(slide_names)})")
    lo, hi = patches
    if not 8 <= lo <= hi:
        raise SynthError(f"patches must be (lo, hi) with 8 <= lo <= hi, got {patches}")
    if n_slides < 2:
        raise SynthError(f"n_slides must be at least 2, got {n_slides}")

    rng = np.random.default_rng(seed)
    k = len(specs) if design in MULTI_MARKER else 1
    world = _make_world(rng, [(s.name, s.embed_dim) for s in specs], latent_dim, k)
    slide_world = _make_world(rng, [(s.name, s.embed_dim) for s in slide_specs], latent_dim, 1)
    slide_world.markers, slide_world.prototypes = world.markers, world.prototypes
    sees: dict[str, list[str]] = {}
    for i, view in enumerate(world.views):
        if design in MULTI_MARKER:
            for m in range(k):
                if m != i:
                    _blind(view, m)
            sees[view.name] = [_state_names(design, k)[len(STATES) + i]]
        elif design == "redundant" and i > 0:
            _blind(view, 0, factor=REDUNDANT_WEAK)
            view.noise = REDUNDANT_WEAK_NOISE
            sees[view.name] = ["lesion (attenuated more, noisier)"]
        elif design == "redundant":
            _blind(view, 0, factor=REDUNDANT_STRONG)
            sees[view.name] = ["lesion"]
        else:
            sees[view.name] = ["lesion"] if design == "redundant" else ["g (weakly, via tumour patches)"]

    n_patients = max(1, round(n_slides / (1 + multi_slide)))
    people = _patients(design, n_patients, k, rng, label_noise)
    site_stain = {site: SITE_STAIN * rng.standard_normal(3) for site in SITES}
    ids: list[tuple[str, _Patient]] = [(f"{p.pid}-01Z-00-DX1", p) for p in people]
    for j in rng.permutation(len(people))[: max(0, n_slides - len(ids))]:
        ids.append((f"{people[j].pid}-01Z-00-DX2", people[j]))
    slides = []
    for sid, p in sorted(ids, key=lambda t: t[0])[:n_slides]:
        n = int(rng.integers(lo, hi + 1))
        states = _states(p, n, rng)
        h = _latent_points(world, design, states, p, rng)
        stain = site_stain[p.site] + SLIDE_STAIN * rng.standard_normal(3)
        coords, coords_attrs = _coords(sid, n, p.site, patch_px, magnification, rng)
        label = ("neg", "pos")[p.label]
        truth = {
            "patient": p.pid,
            "site": p.site,
            "label": label,
            "n_patches": n,
            "state_counts": {
                name: int((states == i).sum()) for i, name in enumerate(_state_names(design, k))
            },
            **p.latents,
        }
        slides.append(
            SimSlide(
                sid,
                label,
                {v.name: _render(world, v, h, stain, rng) for v in world.views},
                {v.name: _slide_embedding(slide_world, v, p, stain, rng) for v in slide_world.views},
                coords,
                coords_attrs,
                truth,
                states,
            )
        )
    truth = {
        "design": design,
        "seed": seed,
        "patch_fms": {
            v.name: {"embed_dim": int(v.weights.shape[1]), "sees": sees[v.name]} for v in world.views
        },
        "slide_fms": {
            s.name: {"embed_dim": s.embed_dim, "simulated": True, "carries": "g, composition, stain"}
            for s in slide_specs
        },
        "promise": _PROMISES[design],
        "contrast": _contrast(k).tolist() if design == "complementary" else None,
    }
    return SimCohort(design, slides, truth)


def make_feature_cohort(
    out: str | Path,
    design: str,
    n_slides: int = 100,
    seed: int = 0,
    layout: str = "trident",
    fms: tuple[str, ...] = ("uni", "conch-v1.5", "virchow2"),
    slide_fms: tuple[str, ...] | None = None,
    patches: tuple[int, int] = (80, 240),
    multi_slide: float = 0.2,
    label_noise: float = 0.0,
    magnification: int = 20,
    patch_px: int = 256,
) -> Path:
    """Write a ``design`` cohort of ``n_slides`` slides into ``out`` and return its labels.csv.

    ``layout="trident"``: ``out/<mag>x_<px>px_0px_overlap/`` as TRIDENT writes it (``patches/``,
    ``features_<encoder>/``, ``slide_features_<encoder>/``, TRIDENT's encoder names);
    ``layout="store"``: ``out/features/<slide>.h5`` in this project's format. labels.csv
    (``slide_id,label,patient_id``, labels ``neg``/``pos``) and ground_truth.json go to ``out``.
    """
    if layout not in LAYOUTS:
        raise SynthError(f"unknown layout {layout!r}; choose trident or store")
    cohort = simulate_cohort(
        design,
        n_slides,
        seed,
        fms,
        slide_fms,
        patches,
        multi_slide,
        label_noise,
        magnification=magnification,
        patch_px=patch_px,
    )
    out = Path(out)
    run = out / trident_run_name(magnification, patch_px) if layout == "trident" else out / "features"
    patch_enc, slide_enc = _trident_names()
    for s in cohort.slides:
        if layout == "trident":
            write_trident_slide(
                run,
                s.slide_id,
                s.coords,
                s.coords_attrs,
                {patch_enc.get(fm, fm): x for fm, x in s.patch.items()},
                {slide_enc.get(fm, fm): x for fm, x in s.slide.items()},
            )
        else:
            attrs = {**s.coords_attrs, "mpp": 10.0 / magnification, "read_px": patch_px}
            write_store_slide(run, s.slide_id, s.coords, attrs, s.patch, s.slide, {"synthetic": design})
    labels = write_csv(
        out / "labels.csv",
        [{"slide_id": s.slide_id, "label": s.label, "patient_id": s.slide_id[:12]} for s in cohort.slides],
    )
    truth = {
        **cohort.truth,
        "layout": layout,
        "features": str(run),
        "slides": {s.slide_id: s.truth for s in cohort.slides},
    }
    write_atomic(out / "ground_truth.json", json.dumps(truth, indent=1, default=float) + "\n")
    return labels


_PROMISES = {
    "complementary": "each patch FM alone is weak; all FMs together separate the classes (linearly, after pooling)",
    "subtypes": "each patch FM alone finds only its own lesion subtype; all FMs together find every positive",
    "redundant": "the first patch FM alone is about as good as all together; the others are weaker",
    "teacher": "a linear probe of the slide FM beats patch-only baselines; the patches carry g only in tumour patches",
}


def _state_names(design: str, k: int) -> list[str]:
    prefix = {"complementary": "marker", "subtypes": "subtype"}
    marker = [f"{prefix[design]}{m}" for m in range(k)] if design in prefix else ["lesion"]
    return [*STATES, *(marker if design != "teacher" else [])]


def _coords(
    sid: str, n: int, site: str, patch_px: int, magnification: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    """Distinct grid positions at level 0 and TRIDENT's patching attributes (some sites scan at 40x)."""
    level0_mag = 40 if SITES.index(site) % 2 == 0 else 20
    size0 = patch_px * level0_mag // magnification
    side = int(np.ceil(np.sqrt(n * 1.6)))
    cells = np.sort(rng.choice(side * side, size=n, replace=False))
    coords = np.stack([(cells % side) * size0, (cells // side) * size0], 1).astype(np.int64)
    attrs = {
        "patch_size": patch_px,
        "patch_size_level0": size0,
        "level0_magnification": level0_mag,
        "target_magnification": magnification,
        "overlap": 0,
        "name": sid,
        "level0_width": int(side * size0),
        "level0_height": int(side * size0),
    }
    return coords, attrs
