"""Headless Chromium (Debian's ``chromium``) for tests: a screenshot and the rendered DOM of a local page.

Absent Chromium skips a test, except under CI (CI=true), where .ci/run installs it and its absence fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium() -> str:
    """The Chromium binary, else skip (locally) or fail (under CI)."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but chromium is missing: .ci/run must install it (apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium); the browser check needs it")


def _run(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    profile.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


def screenshot(page: Path, png: Path, size: tuple[int, int] = (1280, 2000)) -> Path:
    """A PNG of ``page`` as Chromium draws it (a fresh, empty profile a call)."""
    _run(
        page, png.parent / f".profile-{png.stem}", f"--screenshot={png}", f"--window-size={size[0]},{size[1]}"
    )
    assert png.is_file(), f"chromium wrote no screenshot of {page}"
    save = os.environ.get("FUSECPATH_SCREENSHOTS")  # a folder to keep copies in, for people to look at
    if save:
        Path(save).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(save) / png.name)
    return png


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM after Chromium loaded and laid out ``page``, serialised."""
    return _run(page, profile, "--dump-dom").stdout


def not_blank(png: Path) -> dict[str, float]:
    """Figures that say a screenshot shows something: share of non-background pixels, distinct colours."""
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    background = np.median(pixels, axis=0)
    inked = float(np.mean(np.abs(pixels.astype(int) - background).sum(1) > 60))
    colours = len(np.unique(pixels[:: max(1, len(pixels) // 200_000)], axis=0))
    return {"inked": inked, "colours": float(colours), "std": float(pixels.std())}


class Cells(HTMLParser):
    """Every ``td``/``th`` with its attributes and its text, and every ``img`` source, of a DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[dict[str, str], str]] = []
        self.images: list[str] = []
        self._open: list[tuple[dict[str, str], list[str]]] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("td", "th"):
            self._open.append((dict(attrs), []))
        elif tag == "img":
            self.images.append(dict(attrs).get("src", ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._open:
            attrs, text = self._open.pop()
            self.cells.append((attrs, " ".join("".join(text).split())))

    def handle_data(self, data):
        for _, text in self._open:
            text.append(data)


def cells(dom: str) -> Cells:
    parser = Cells()
    parser.feed(dom)
    return parser


def self_contained(text: str) -> None:
    """No script, stylesheet link or url(): nothing to fetch; every image a data URI."""
    assert "<script" not in text and "<link" not in text and "url(" not in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
