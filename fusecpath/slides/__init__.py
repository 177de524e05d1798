"""Slides: open any OpenSlide format or plain image, find tissue, tile it at an exact mpp."""

from fusecpath.slides.reader import Slide, SlideError, open_slide, slide_id
from fusecpath.slides.tiling import Tiling, tile_tissue
from fusecpath.slides.tissue import TissueMask, save_tissue, segment_tissue, to_geojson

__all__ = [
    "Slide",
    "SlideError",
    "TissueMask",
    "Tiling",
    "open_slide",
    "save_tissue",
    "segment_tissue",
    "slide_id",
    "tile_tissue",
    "to_geojson",
]
