"""Direct tile decoding of a tiled TIFF's pyramid levels (SVS, generic TIFF) with tifffile + imagecodecs.

Measured faster than OpenSlide's read_region on the same tiles, with the same pixels (benchmarks/extract.py
readers). A level is served only when a tiled, 8-bit, 3-sample page of exactly OpenSlide's level size
exists; everything else (other formats, other levels, regions off the level's pixel grid) stays with
OpenSlide. Decoded tiles are kept in a byte-bounded LRU cache, so a tile that several patches or read
geometries cover is decoded once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fusecpath.errors import FusecpathError

DEFAULT_CACHE_BYTES = 64 << 20


class TileDecodeError(FusecpathError):
    """A tile that cannot be decoded (the caller words the user's message)."""


class TileLevels:
    """The pages of a tiled TIFF that match OpenSlide's levels, read region by region."""

    def __init__(self, tif, pages: list, cache_bytes: int = DEFAULT_CACHE_BYTES):
        self._tif, self._pages = tif, pages
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cached_bytes, self.cache_bytes = 0, cache_bytes
        self.decoded = 0  # tiles decoded so far (a tile served from the cache is not counted again)

    @classmethod
    def open(cls, path: Path, level_dimensions: Sequence[tuple[int, int]]) -> TileLevels | None:
        """The file's levels, or None when tifffile cannot read it or serves none of its levels."""
        import tifffile

        try:
            tif = tifffile.TiffFile(path)
        except Exception:  # noqa: BLE001 - any file tifffile cannot parse is OpenSlide's alone
            return None
        by_size = {}
        try:
            for series in tif.series:
                for level in series.levels:
                    page = level.keyframe
                    if _servable(page):
                        by_size.setdefault((page.imagewidth, page.imagelength), page)
        except Exception:  # noqa: BLE001 - as above: a structure tifffile does not follow
            by_size = {}
        pages = [by_size.get(tuple(size)) for size in level_dimensions]
        if not any(page is not None for page in pages):
            tif.close()
            return None
        return cls(tif, pages)

    def has(self, level: int) -> bool:
        return self._pages[level] is not None

    def read(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        """(height, width, 3) uint8 of ``level`` with top-left (x, y) in that level's pixels; white
        outside the image, as OpenSlide's transparent pixels become."""
        page = self._pages[level]
        tw, th = page.tilewidth, page.tilelength
        iw, ih = page.imagewidth, page.imagelength
        out = np.full((height, width, 3), 255, np.uint8)
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + width, iw), min(y + height, ih)
        across = -(-iw // tw)
        for ty in range(y0 // th, (y1 - 1) // th + 1 if y1 > y0 else 0):
            for tx in range(x0 // tw, (x1 - 1) // tw + 1 if x1 > x0 else 0):
                tile = self._tile(level, page, ty * across + tx)
                if tile is None:
                    continue  # a tile the file does not hold: blank, as OpenSlide leaves it
                sx, sy = max(x0, tx * tw), max(y0, ty * th)
                ex, ey = min(x1, (tx + 1) * tw), min(y1, (ty + 1) * th)
                out[sy - y : ey - y, sx - x : ex - x] = tile[
                    sy - ty * th : ey - ty * th, sx - tx * tw : ex - tx * tw
                ]
        return out

    def _tile(self, level: int, page, index: int) -> np.ndarray | None:
        key = (level, index)
        tile = self._cache.get(key)
        if tile is not None:
            self._cache.move_to_end(key)
            return tile
        offset, count = page.dataoffsets[index], page.databytecounts[index]
        if not count:
            return None
        handle = self._tif.filehandle
        handle.seek(offset)
        data = handle.read(count)
        try:
            decoded = page.decode(data, index, jpegtables=page.jpegtables)[0]
        except Exception as exc:  # noqa: BLE001 - any codec error means the same thing to the user
            raise TileDecodeError(f"tile {index} of level {level}: {exc}") from exc
        if decoded is None or len(data) < count:
            raise TileDecodeError(f"tile {index} of level {level} is cut short")
        tile = np.ascontiguousarray(decoded.reshape(page.tilelength, page.tilewidth, -1)[..., :3])
        self.decoded += 1
        self._cache[key] = tile
        self._cached_bytes += tile.nbytes
        while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
            self._cached_bytes -= self._cache.popitem(last=False)[1].nbytes
        return tile

    def close(self) -> None:
        self._cache.clear()
        self._cached_bytes = 0
        self._tif.close()


def _servable(page) -> bool:
    return bool(
        page.is_tiled
        and page.tiledepth == 1
        and page.samplesperpixel == 3
        and page.dtype == np.uint8
        and page.planarconfig == 1  # contiguous samples
        and page.photometric in (2, 6)  # RGB, YCbCr
    )
