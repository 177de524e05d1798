"""Open a slide (any format OpenSlide reads, or a plain PNG/JPEG/TIFF image) and read patches at an
exact microns-per-pixel."""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openslide
from PIL import Image

from fusecpath.errors import FusecpathError
from fusecpath.slides.tiles import TileDecodeError, TileLevels

Image.MAX_IMAGE_PIXELS = None  # plain images can be whole slides; they are ours to read, not a bomb

# Levels whose downsample exceeds the wanted one by at most this factor still count as "not coarser".
LEVEL_TOLERANCE = 1.01
THUMBNAIL_BAND_PIXELS = 1 << 22  # level pixels read at once when making a thumbnail


class SlideError(FusecpathError):
    """A slide that cannot be opened or read, or that lacks what the step needs."""


def slide_id(path: str | Path) -> str:
    """The id a slide goes by in the feature store and labels.csv: its file name without suffix."""
    name = Path(path).name
    for suffix in (".ome.tiff", ".ome.tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def quick_checksum(path: str | Path, chunks: int = 16, chunk_bytes: int = 1 << 16) -> str:
    """SHA-256 of the file size and ``chunks`` evenly spaced 64 KiB pieces: catches a replaced or
    rewritten slide without reading gigabytes."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        for i in range(chunks):
            handle.seek(max(0, (size - chunk_bytes) * i // max(1, chunks - 1)))
            digest.update(handle.read(chunk_bytes))
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class SlideInfo:
    """What the store records about a slide."""

    slide_id: str
    path: str
    mpp: float
    mpp_source: str  # "file" or "argument"
    width: int
    height: int
    level_count: int
    vendor: str
    checksum: str


class Slide:
    """A whole-slide image with a known microns-per-pixel at level 0."""

    def __init__(self, path: str | Path, mpp: float | None = None, direct_tiles: bool = True):
        self.path = Path(path)
        self.id = slide_id(self.path)
        self._osr = _open(self.path)
        self._tiles: TileLevels | None = None
        self._tiles_checked = not direct_tiles or isinstance(self._osr, openslide.ImageSlide)
        file_mpp = _file_mpp(self._osr)
        if file_mpp is not None:
            self.mpp, self.mpp_source = file_mpp, "file"
        elif mpp is not None:
            if not (isinstance(mpp, (int, float)) and math.isfinite(mpp) and mpp > 0):
                raise SlideError(
                    f"{self.path.name}: --mpp must be a positive number of µm per pixel, not {mpp!r}"
                )
            self.mpp, self.mpp_source = float(mpp), "argument"
        else:
            self._osr.close()
            raise SlideError(
                f"{self.path.name}: the file does not say its microns per pixel; pass --mpp "
                "(e.g. 0.25 for 40x, 0.5 for 20x scans)"
            )

    # ------------------------------------------------------------------ geometry
    @property
    def dimensions(self) -> tuple[int, int]:
        return self._osr.dimensions

    @property
    def level_count(self) -> int:
        return self._osr.level_count

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        return self._osr.level_dimensions

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        return self._osr.level_downsamples

    @property
    def vendor(self) -> str:
        if isinstance(self._osr, openslide.ImageSlide):
            return "image"
        return self._osr.properties.get(openslide.PROPERTY_NAME_VENDOR, "unknown")

    def info(self) -> SlideInfo:
        w, h = self.dimensions
        return SlideInfo(
            self.id,
            str(self.path),
            self.mpp,
            self.mpp_source,
            w,
            h,
            self.level_count,
            self.vendor,
            quick_checksum(self.path),
        )

    def best_level(self, downsample: float) -> int:
        """The coarsest level that is still at least as fine as ``downsample`` (level 0 if none is)."""
        best = 0
        for level, ds in enumerate(self.level_downsamples):
            if ds <= downsample * LEVEL_TOLERANCE:
                best = level
        return best

    def set_tile_cache(self, capacity: int) -> None:
        """Keep up to ``capacity`` bytes of decoded tiles (tiled formats; plain images have none)."""
        if isinstance(self._osr, openslide.OpenSlide):
            self._osr.set_cache(openslide.OpenSlideCache(capacity))
        if (tiles := self.tile_levels()) is not None:
            tiles.cache_bytes = capacity

    def tile_levels(self) -> TileLevels | None:
        """The levels decoded directly from the file's tiles (None: OpenSlide reads everything)."""
        if not self._tiles_checked:
            self._tiles_checked = True
            self._tiles = TileLevels.open(self.path, self.level_dimensions)
        return self._tiles

    def patch_size_level0(self, mpp: float, read_px: int) -> float:
        """The side, in level-0 pixels, of a ``read_px`` patch at ``mpp`` (not rounded)."""
        return read_px * mpp / self.mpp

    # ------------------------------------------------------------------ pixels
    def read_rgb(self, x: int, y: int, level: int, width: int, height: int) -> np.ndarray:
        """(height, width, 3) uint8 at ``level``, the region's top-left (x, y) given at level 0;
        transparent pixels (outside the scanned area) become white. Levels that ``tile_levels`` serves
        are decoded straight from the file's tiles (same pixels), when (x, y) falls on the level's grid."""
        tiles = self.tile_levels()
        if tiles is not None and tiles.has(level):
            ds = self.level_downsamples[level]
            lx, ly = x / ds, y / ds
            if abs(lx - round(lx)) < 1e-6 and abs(ly - round(ly)) < 1e-6:
                try:
                    return tiles.read(level, round(lx), round(ly), int(width), int(height))
                except TileDecodeError as exc:
                    raise SlideError(
                        f"{self.path.name}: tiles cannot be decoded ({exc}); the file is damaged"
                    ) from exc
        try:
            region = self._osr.read_region((int(x), int(y)), level, (int(width), int(height)))
        except openslide.OpenSlideError as exc:
            raise SlideError(
                f"{self.path.name}: tiles cannot be decoded ({exc}); the file is damaged"
            ) from exc
        return _on_white(region)

    def read_patch(self, x: float, y: float, size_level0: float, out_px: int) -> np.ndarray:
        """The square of side ``size_level0`` (level-0 px) at (x, y), read from the best level and
        resized to ``out_px``: (out_px, out_px, 3) uint8."""
        level = self.best_level(size_level0 / out_px)
        ds = self.level_downsamples[level]
        side = max(1, round(size_level0 / ds))
        rgb = self.read_rgb(round(x), round(y), level, side, side)
        if side != out_px:
            rgb = np.array(Image.fromarray(rgb).resize((out_px, out_px), Image.Resampling.BILINEAR))
        return rgb

    def thumbnail(self, mpp: float) -> tuple[np.ndarray, float]:
        """The whole slide at about ``mpp`` µm/px (never finer than level 0): (H, W, 3) uint8 and the
        exact level-0 pixels per thumbnail pixel (x direction)."""
        w, h = self.dimensions
        ds = max(1.0, mpp / self.mpp)
        size = (max(1, round(w / ds)), max(1, round(h / ds)))
        level = self.best_level(ds)
        lw, lh = self.level_dimensions[level]
        level_ds = self.level_downsamples[level]
        # Read in horizontal bands (memory stays bounded on a slide without a pyramid).
        rows_per_band = max(1, THUMBNAIL_BAND_PIXELS // max(1, lw) * size[1] // lh)
        bands = []
        for r0 in range(0, size[1], rows_per_band):
            r1 = min(size[1], r0 + rows_per_band)
            y0, y1 = round(r0 * lh / size[1]), max(round(r0 * lh / size[1]) + 1, round(r1 * lh / size[1]))
            band = self.read_rgb(0, round(y0 * level_ds), level, lw, y1 - y0)
            if band.shape[:2] != (r1 - r0, size[0]):
                band = np.asarray(Image.fromarray(band).resize((size[0], r1 - r0), Image.Resampling.BOX))
            bands.append(band)
        return np.concatenate(bands, axis=0), w / size[0]

    def close(self) -> None:
        if self._tiles is not None:
            self._tiles.close()
        self._osr.close()

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _on_white(region: Image.Image) -> np.ndarray:
    if region.mode == "RGB":
        return np.array(region)
    if region.getchannel("A").getextrema() == (255, 255):  # fully opaque: the usual case in the scan
        return np.array(region.convert("RGB"))
    rgba = np.asarray(region)
    alpha = rgba[..., 3:4].astype(np.uint16)
    rgb = (rgba[..., :3].astype(np.uint16) * alpha + 255 * (255 - alpha)) // 255
    return rgb.astype(np.uint8)


def _open(path: Path) -> openslide.AbstractSlide:
    if not path.exists():
        raise SlideError(f"{path}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise SlideError(f"{path.name}: the file is empty (0 bytes); copy it again")
    try:
        return openslide.OpenSlide(path)
    except openslide.OpenSlideUnsupportedFormatError:
        pass
    except openslide.OpenSlideError as exc:
        raise SlideError(
            f"{path.name}: OpenSlide cannot open it ({exc}); the file is damaged or unsupported"
        ) from exc
    try:  # a plain PNG/JPEG/TIFF image
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL warns on truncated files before it fails on them
            slide = openslide.ImageSlide(path)
            slide.read_region((0, 0), 0, (1, 1))
        return slide
    except (OSError, ValueError, SyntaxError) as exc:
        raise SlideError(
            f"{path.name}: neither a slide OpenSlide reads nor a PNG/JPEG/TIFF image ({exc}); "
            "the file may be truncated or damaged"
        ) from exc


def _file_mpp(osr: openslide.AbstractSlide) -> float | None:
    if isinstance(osr, openslide.ImageSlide):
        return None  # plain images carry at best a screen DPI, not a scan resolution
    values = []
    for key in (openslide.PROPERTY_NAME_MPP_X, openslide.PROPERTY_NAME_MPP_Y):
        try:
            value = float(osr.properties.get(key, "nan"))
        except ValueError:
            continue
        if math.isfinite(value) and value > 0:
            values.append(value)
    return sum(values) / len(values) if values else None


def open_slide(path: str | Path, mpp: float | None = None, direct_tiles: bool | None = None) -> Slide:
    """Open ``path``; ``mpp`` is used only when the file does not say its microns per pixel.
    ``direct_tiles=False`` (default: unless the environment sets ``FUSECPATH_READER=openslide``) reads
    every pixel through OpenSlide."""
    if direct_tiles is None:
        direct_tiles = os.environ.get("FUSECPATH_READER", "").lower() != "openslide"
    return Slide(path, mpp=mpp, direct_tiles=direct_tiles)
