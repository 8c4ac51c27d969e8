"""The bright-field aperture: one rule for every picture, navigator and summary.

The bright-field disc of the mean pattern of at most :data:`APERTURE_SAMPLE_BYTES`
of frames spread evenly over the whole scan (:func:`sample_positions`), in the
orientation ``hs.load`` gives, serves ``rsciio-mib view``, ``watch``, ``convert
--preview``, the archives' summaries and the ``bright_field`` navigator. The first
frames alone are not enough: a disc that moves across the scan puts their circle
off the mean disc.
"""

from __future__ import annotations

import math

import numpy as np

#: Frames whose mean locates the bright-field disc: all of a small scan, else as many as fit
#: in this many bytes, spread evenly over the scan (the disc's place is a property of the whole scan).
APERTURE_SAMPLE_BYTES = 64 << 20


def sample_positions(count: int, frame_bytes: int) -> np.ndarray:
    """Flat scan positions whose mean pattern locates the aperture: evenly spread over ``count``."""
    k = max(1, min(count, APERTURE_SAMPLE_BYTES // max(1, frame_bytes)))
    return np.unique(np.round(np.linspace(0, count - 1, k)).astype(np.int64))


def aperture_of(frames: np.ndarray) -> tuple[float, float, float]:
    """The aperture of the frames at :func:`sample_positions` (summed exactly, so every caller agrees)."""
    frames = np.asarray(frames)
    frames = frames.reshape((-1,) + frames.shape[-2:])
    return aperture(frames.sum(axis=0, dtype=np.uint64) / max(1, len(frames)))


def aperture(mean: np.ndarray) -> tuple[float, float, float]:
    """Centre (row, col) and radius of the bright-field disc in a mean pattern.

    The disc is the bright region around the brightest pixel: pixels above
    half-way between the median and the maximum; its radius is that area's
    equivalent radius, and the circle is kept inside the frame.
    """
    mean = np.asarray(mean, dtype=float)
    rows, cols = mean.shape
    if mean.max() <= np.median(mean):
        return rows / 2, cols / 2, min(rows, cols) / 8
    bright = mean > (np.median(mean) + mean.max()) / 2
    y, x = np.nonzero(bright)
    peak_y, peak_x = np.unravel_index(np.argmax(mean), mean.shape)
    near = (y - peak_y) ** 2 + (x - peak_x) ** 2 <= (min(rows, cols) / 4) ** 2
    y, x = y[near], x[near]
    weights = mean[y, x]
    cy, cx = float(np.average(y, weights=weights)), float(np.average(x, weights=weights))
    radius = max(2.0, float(np.sqrt(y.size / np.pi)) * 1.1)
    radius = min(radius, cy + 0.5, cx + 0.5, rows - 0.5 - cy, cols - 0.5 - cx)
    return cy, cx, max(radius, 1.0)


def disc_mask(shape: tuple[int, int], disc: tuple[float, float, float]) -> np.ndarray:
    """Pixels of ``shape`` inside the circle ``(row, col, radius)``."""
    y, x = np.ogrid[: shape[0], : shape[1]]
    cy, cx, radius = disc
    return ((y - cy) ** 2 + (x - cx) ** 2) <= radius**2


def direct_beam_found(mean: np.ndarray, disc: tuple[float, float, float]) -> bool:
    """Whether ``disc`` is a direct beam: at least three times as bright as the median pattern
    pixel outside it, and holding most of the bright pixels (a test pattern's glyphs or a flat
    field have none: no aperture is drawn for them)."""
    mean = np.asarray(mean, dtype=float)
    inside = disc_mask(mean.shape, disc)
    if inside.all() or not inside.any():
        return False
    outside = float(np.median(mean[~inside]))
    bright = mean > (np.median(mean) + mean.max()) / 2
    return float(mean[inside].mean()) >= 3 * max(outside, 1e-12) and bright[inside].sum() >= 0.5 * bright.sum()


def virtual_bright_field(data) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Counts in the bright-field aperture at every scan position of ``data`` (numpy or dask,
    ``(*scan, rows, cols)``), and the aperture (:func:`aperture_of` the sampled frames): one pass,
    over the aperture's bounding box only."""
    frame = data.shape[-2:]
    flat = data.reshape((-1,) + frame)
    sample = flat[sample_positions(flat.shape[0], math.prod(frame) * data.dtype.itemsize)]
    disc = aperture_of(sample.compute() if hasattr(sample, "compute") else sample)
    mask = disc_mask(frame, disc)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    inside = data[(..., *box)] * mask[box]
    image = inside.sum(axis=(-2, -1), dtype=np.uint64)
    return np.asarray(image.compute() if hasattr(image, "compute") else image), disc
