"""The reader pool: slides queued ahead, batches in reused shared-memory slots, out-of-order
consumption, cancellation and errors, against pixels read in this process."""

from __future__ import annotations

import numpy as np
import pytest

from fusecpath.features.readers import SLOTS, Geometry, ReaderPool, ReadError
from fusecpath.slides import open_slide

BATCH = 2  # small batches: many more batches than slots


@pytest.fixture(scope="module")
def jobs(real_slide, small_cohort):
    """(path, mpp, coords, geometries) of two slides, two geometries on the real one."""
    out = []
    for path, geometries in (
        (real_slide, [Geometry(0.0, 256.0, 64), Geometry(64.0, 128.0, 32)]),
        (small_cohort / "SYN-000-A.svs", [Geometry(0.0, 256.0, 64)]),
    ):
        with open_slide(path) as slide:
            xs = np.arange(0, slide.dimensions[0] - 300, 280)[:7]
            coords = np.array([(x, y) for x in xs for y in (0, 400, 800, 1200)], dtype=np.int64)
            out.append((path, slide.mpp, coords, geometries))
    return out


def _collect(batches, n: int, geometries) -> list[np.ndarray]:
    got = [np.zeros((n, g.px, g.px, 3), np.uint8) for g in geometries]
    seen = []
    for start, tensors in batches:
        seen.append(start)
        for array, tensor in zip(got, tensors, strict=True):
            array[start : start + len(tensor)] = tensor.numpy()  # copied before the slot is reused
    assert sorted(seen) == list(range(0, n, BATCH))
    return got


def _expected(job) -> list[np.ndarray]:
    path, mpp, coords, geometries = job
    with ReaderPool(0) as pool:
        return _collect(pool.read(path, mpp, coords, geometries, BATCH), len(coords), geometries)


def test_slides_queued_ahead_and_taken_in_any_order_give_the_same_pixels(jobs):
    expected = [_expected(job) for job in jobs]
    assert len(jobs[0][2]) // BATCH > 2 * SLOTS
    with ReaderPool(2) as pool:
        tickets = [pool.submit(p, m, c, g, BATCH) for p, m, c, g in jobs]
        for index in (1, 0):  # the later slide first: its slots must not starve the earlier one
            _, _, coords, geometries = jobs[index]
            got = _collect(pool.results(tickets[index]), len(coords), geometries)
            for a, b in zip(got, expected[index], strict=True):
                np.testing.assert_array_equal(a, b)


def test_leaving_a_slide_early_cancels_it_and_the_pool_goes_on(jobs):
    expected = _expected(jobs[1])
    with ReaderPool(1) as pool:
        first = pool.submit(*jobs[0][:3], jobs[0][3], BATCH)
        second = pool.submit(*jobs[1][:3], jobs[1][3], BATCH)
        batches = pool.results(first)
        next(batches)
        batches.close()
        got = _collect(pool.results(second), len(jobs[1][2]), jobs[1][3])
        np.testing.assert_array_equal(got[0], expected[0])


def test_a_slide_that_cannot_be_read_is_one_error_and_the_next_is_read(jobs, tmp_path):
    bad = tmp_path / "broken.svs"
    bad.write_bytes(b"not a slide")
    path, mpp, coords, geometries = jobs[1]
    with ReaderPool(1) as pool:
        failing = pool.submit(bad, mpp, coords, geometries, BATCH)
        ticket = pool.submit(path, mpp, coords, geometries, BATCH)
        with pytest.raises(ReadError, match="broken.svs"):
            list(pool.results(failing))
        got = _collect(pool.results(ticket), len(coords), geometries)
        np.testing.assert_array_equal(got[0], _expected(jobs[1])[0])
