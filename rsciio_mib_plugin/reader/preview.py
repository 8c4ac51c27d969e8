"""Quick looks: the bright-field disc in a mean pattern, and a preview PNG."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


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


def plot_preview(mean, vbf, disc, title: str, output) -> Path:
    """PNG of the mean pattern (log scale, aperture drawn) and the virtual bright field.

    ``vbf`` is shaped like the scan (``None`` or a scalar for one frame).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cy, cx, radius = disc
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), dpi=100, layout="constrained")
    image = axes[0].imshow(np.log1p(np.asarray(mean, float)), cmap="inferno")
    fig.colorbar(image, ax=axes[0], label="log(1 + mean counts)", shrink=0.85)
    axes[0].add_patch(
        plt.Circle((cx, cy), radius, fill=False, color="cyan", label=f"bright-field aperture, r = {radius:.0f} px")
    )
    axes[0].legend(loc="upper right", fontsize=8, framealpha=0.8)
    axes[0].set(title="mean diffraction pattern", xlabel="kx (px)", ylabel="ky (px)")
    vbf = None if vbf is None else np.asarray(vbf)
    if vbf is not None and vbf.ndim >= 1:
        scan = vbf.ndim >= 2
        vbf = vbf.reshape(vbf.shape[0], -1) if scan else vbf[None, :]
        image = axes[1].imshow(vbf, cmap="gray", aspect="equal" if scan else "auto")
        fig.colorbar(image, ax=axes[1], label="counts in aperture", shrink=0.85)
        axes[1].set(
            title="virtual bright field",
            xlabel="x (scan px)" if scan else "frame",
            ylabel="y (scan px)" if scan else "",
        )
    else:
        axes[1].set_axis_off()
        axes[1].set_title("single frame: no scan")
    fig.suptitle(os.path.basename(str(title)))
    fig.savefig(output)
    plt.close(fig)
    return Path(output)


class LivePreview:
    """Mean pattern and virtual bright field of a scan, filled in as frames arrive.

    Parameters
    ----------
    navigation_shape : tuple of int, optional
        ``(rows, cols)`` of the scan; ``None``: a strip of frames as they come.
    frame_shape : tuple of int
        ``(rows, cols)`` of one frame.
    disc : tuple of float
        Bright-field aperture ``(row, col, radius)``.
    """

    def __init__(self, navigation_shape, frame_shape, disc):
        self.navigation_shape = navigation_shape
        self.disc = disc
        self.mask = disc_mask(frame_shape, disc)
        self.total = np.zeros(frame_shape, np.float64)
        self.frames = 0
        self.vbf = np.full(int(np.prod(navigation_shape)) if navigation_shape else 0, np.nan)

    @classmethod
    def for_file(cls, path, first_block, navigation_shape=None, frames=None) -> LivePreview:
        """Shape from ``navigation_shape`` (X, Y), the ``.hdr`` (ScanX/ScanY, else the frame
        count with the frames per trigger as the line length), a square frame count, or none;
        the aperture from the first block of frames."""
        from ..format.hdr_file import FRAMES_IN_ACQUISITION, FRAMES_PER_TRIGGER, SCAN_X, SCAN_Y, hdr_int, read_hdr

        hdr_path = Path(path).with_suffix(".hdr")
        hdr = read_hdr(hdr_path) if hdr_path.is_file() else None
        total = frames or hdr_int(hdr, FRAMES_IN_ACQUISITION)
        per_line = hdr_int(hdr, FRAMES_PER_TRIGGER)
        if navigation_shape:
            shape = tuple(navigation_shape[::-1])
        elif hdr_int(hdr, SCAN_X) and hdr_int(hdr, SCAN_Y):
            shape = (hdr_int(hdr, SCAN_Y), hdr_int(hdr, SCAN_X))
        elif total and per_line and 1 < per_line < total and total % per_line == 0:
            shape = (total // per_line, per_line)
        elif total and int(np.sqrt(total)) ** 2 == total:
            shape = (int(np.sqrt(total)),) * 2
        else:
            shape = None
        return cls(shape, first_block.shape[1:], aperture(first_block.mean(axis=0)))

    def add(self, first: int, frames: np.ndarray) -> None:
        """Add ``frames`` whose first is scan position ``first`` (positions past the scan: mean only)."""
        self.total += frames.sum(axis=0, dtype=np.float64)
        self.frames += len(frames)
        stop = first + len(frames)
        if self.navigation_shape is None and stop > self.vbf.size:
            self.vbf = np.concatenate([self.vbf, np.full(max(stop, 2 * self.vbf.size) - self.vbf.size, np.nan)])
        keep = max(0, min(len(frames), self.vbf.size - first))
        self.vbf[first : first + keep] = frames[:keep, self.mask].sum(axis=1)

    def save(self, output, title: str) -> Path:
        """Write the PNG under a temporary name, then rename it: a viewer never sees half a file."""
        output = Path(output)
        part = output.with_name(f".{output.stem}.part{output.suffix or '.png'}")
        mean = self.total / max(self.frames, 1)
        if self.navigation_shape:
            vbf = self.vbf.reshape(self.navigation_shape)
        else:
            vbf = self.vbf[: int(np.max(np.flatnonzero(~np.isnan(self.vbf)), initial=-1)) + 1]
        plot_preview(mean, vbf, self.disc, f"{title}: {self.frames} frames", part)
        os.replace(part, output)
        return output
