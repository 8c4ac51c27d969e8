"""Counts per frame, fast enough to take while frames are read (the navigator of a load)."""

from __future__ import annotations

import sys

import numpy as np


def rows_per_add(dtype: np.dtype, depth: int | None) -> int:
    """How many pixel values of a ``depth``-bit counter fit one ``dtype`` lane with no carry: as
    many can be added in 64-bit words, several pixels at a time (1 when the depth is unknown)."""
    if depth is None or not 0 < depth < dtype.itemsize * 8:
        return 1
    return (2 ** (dtype.itemsize * 8) - 1) // (2**depth - 1)


def frame_totals(frames: np.ndarray, depth: int | None = None) -> np.ndarray:
    """Counts of each frame of ``(n, rows, cols)`` unsigned frames, as ``uint64``.

    With a known counter depth the pixels are added as the lanes of 64-bit
    words, as many rows at a time as cannot carry out of a lane (16 rows of
    12-bit counts in ``uint16``), and the lanes are added at the end: about
    three times as fast as numpy's ``sum``, which matters when every frame of
    an eager load is counted. Values above the depth's range (a damaged file)
    would carry into a neighbour lane; without a depth every pixel is added
    on its own.
    """
    n = frames.shape[0]
    flat = frames.reshape(n, -1)
    per_word = 8 // frames.dtype.itemsize
    rows = rows_per_add(frames.dtype, depth)
    whole = flat.flags.c_contiguous and flat.shape[1] % per_word == 0
    words = flat.shape[1] // per_word if whole else 0
    # the largest power of two of rows that fits the lanes and divides the frame's words
    group = 1
    while group * 2 <= rows and words % (group * 2) == 0 and group * 2 <= words:
        group *= 2
    if group < 2:
        return flat.sum(axis=1, dtype=np.uint64)
    lanes = np.add.reduce(flat.view(np.uint64).reshape(n, group, -1), axis=1)
    return lanes.view(frames.dtype).reshape(n, -1).sum(axis=1, dtype=np.uint64)


def count_while_converting(pixels: np.ndarray, out: np.ndarray, totals: np.ndarray) -> bool:
    """``out[...] = pixels`` and ``totals[...]`` = each frame's counts in one compiled
    pass, when numba is already running in this process; ``False`` (nothing done)
    otherwise, or when the arrays are not the plain case it handles: ``(n, rows,
    cols)`` big-endian (or byte) pixels, contiguous, into contiguous frames of the
    same type or into such frames' row-reversed view.

    On the 2.15 GB benchmark scan an eager load counting with numpy after the
    conversion takes 1.21x the load without a count; with the compiled pass 1.04x
    (``benchmarks/bench_navigator.py``).
    """
    if "numba" not in sys.modules or out.ndim != 3 or pixels.shape != out.shape:
        return False
    flip = out.strides[1] < 0
    upright = out[:, ::-1] if flip else out
    swapped = pixels.dtype.itemsize == 1 or (pixels.dtype.byteorder == ">" and sys.byteorder == "little")
    if not (
        swapped
        and pixels.dtype.kind == out.dtype.kind == "u"
        and pixels.dtype.itemsize == out.dtype.itemsize
        and pixels.flags.c_contiguous
        and upright.flags.c_contiguous
        and totals.shape == (len(out),)
    ):
        return False
    from .compiled import convert_count

    convert_count(pixels.view(out.dtype), upright, totals, flip)
    return True
