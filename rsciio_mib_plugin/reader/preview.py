"""Quick looks at a scan: the bright-field aperture, the virtual bright field, the preview PNG.

One rule for the aperture serves every picture (``rsciio-mib view``, ``watch``,
``convert --preview``) and the archives' summaries: the bright-field disc of the
mean pattern of at most :data:`APERTURE_SAMPLE_BYTES` of frames spread evenly
over the whole scan (:func:`sample_positions`), in the orientation ``hs.load``
gives. The first frames alone are not enough: a disc that moves across the scan
puts their circle off the mean disc.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..sources.atomic import replacing

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


#: Colour of scan positions without a frame yet (``watch``), outside the grey scale of the counts.
NOT_YET = "#2f6db5"


def preview_figure(mean, vbf, disc, title: str):
    """The figure of :func:`plot_preview` (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    mean = np.asarray(mean, float)
    cy, cx, radius = disc
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.4), dpi=100, layout="constrained")
    image = axes[0].imshow(np.log10(1 + mean), cmap="inferno")
    fig.colorbar(image, ax=axes[0], label="log10(1 + mean counts)", shrink=0.85)
    if direct_beam_found(mean, disc):
        axes[0].add_patch(plt.Circle((cx, cy), radius, fill=False, color="cyan"))
        beam = f"bright-field aperture (cyan): r = {radius:.0f} px at ({cx:.0f}, {cy:.0f})"
    else:
        beam = "no direct beam found: no aperture drawn"
    axes[0].set(title=f"mean diffraction pattern\n{beam}", xlabel="kx (px)", ylabel="ky (px)")
    vbf = None if vbf is None else np.asarray(vbf, float)
    if vbf is None or vbf.ndim == 0:
        axes[1].set_axis_off()
        axes[1].set_title("one frame: no scan")
    elif vbf.ndim == 1:  # a stack: counts by frame
        axes[1].plot(np.arange(vbf.size), vbf, ".-", color="0.2", markersize=3)
        axes[1].set(title="counts in the aperture, frame by frame", xlabel="frame", ylabel="counts in aperture")
        axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        vbf = vbf.reshape(vbf.shape[0], -1)
        missing = np.isnan(vbf)
        cmap = matplotlib.colormaps["gray"].with_extremes(bad=NOT_YET)
        image = axes[1].imshow(np.ma.masked_invalid(vbf), cmap=cmap, aspect="equal")
        fig.colorbar(image, ax=axes[1], label="counts in aperture", shrink=0.85)
        note = f"\n(blue: {int(missing.sum())} positions not yet acquired)" if missing.any() else ""
        axes[1].set(title="virtual bright field" + note, xlabel="x (scan px)", ylabel="y (scan px)")
        for axis in (axes[1].xaxis, axes[1].yaxis):
            axis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(os.path.basename(str(title)))
    return fig


def plot_preview(mean, vbf, disc, title: str, output) -> Path:
    """PNG of the mean pattern (log scale, the aperture drawn where a direct beam is found) and the
    virtual bright field: an image of the scan (positions without a frame yet in blue), counts
    frame by frame for a stack, nothing for one frame.

    ``vbf`` is shaped like the scan (``None`` or a scalar for one frame).
    """
    import matplotlib.pyplot as plt

    fig = preview_figure(mean, vbf, disc, title)
    with replacing(output) as temp:
        fig.savefig(temp, format="png")
    plt.close(fig)
    return Path(output)


def bright_field(path, navigation_shape=None, progress=None, storage_options=None):
    """Mean pattern, virtual bright field (``None`` for one frame) and aperture of the signal
    ``hs.load`` gives, in one pass over the data: what every preview of a whole file draws.

    ``progress`` is a context manager shown around the computation (or ``None``).
    """
    import contextlib

    import dask

    from .load import Shaping, load_datasets

    shaping = Shaping(navigation_shape, flip=True)
    data = load_datasets(path, shaping, lazy=True, storage_options=storage_options)[0][0]
    frame = data.shape[-2:]
    flat = data.reshape((-1,) + frame)
    sample = flat[sample_positions(flat.shape[0], math.prod(frame) * data.dtype.itemsize)]
    with progress or contextlib.nullcontext():
        disc = aperture_of(sample.compute())
        mean, vbf = dask.compute(flat.mean(axis=0), (flat * disc_mask(frame, disc)).sum(axis=(-2, -1), dtype=np.uint64))
    return np.asarray(mean, float), (vbf.reshape(data.shape[:-2]) if data.ndim > 2 else None), disc


def scan_preview(path, output, navigation_shape=None, progress=None, storage_options=None) -> Path:
    """What ``rsciio-mib view`` draws, and ``watch`` once the file is complete (:func:`bright_field`)."""
    mean, vbf, disc = bright_field(path, navigation_shape, progress, storage_options)
    return plot_preview(mean, vbf, disc, str(path), output)
