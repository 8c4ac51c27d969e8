"""Quick looks at a scan: the preview PNG of the mean pattern and the virtual bright field
(the aperture's rule: :mod:`.aperture`)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..sources.atomic import replacing
from .aperture import aperture_of, direct_beam_found, disc_mask, sample_positions

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
