"""The picture of an acquisition while it is written (``rsciio-mib watch``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..reader.aperture import aperture, disc_mask
from ..reader.load import Shaping, open_plan
from ..reader.preview import plot_preview


class LivePreview:
    """Mean pattern and virtual bright field of a file being written, as ``hs.load`` would show it so far.

    Rows are flipped as ``hs.load`` flips them; each frame's counts in the
    aperture are kept by its index in the acquisition, and each picture is
    shaped by the reader's own scan plan of the file as it is then (complete
    lines of the scan, or ``navigation_shape``). The aperture is found again
    for every picture, in the mean of the frames so far (the rule of
    :mod:`.reader.preview` needs the whole scan; ``watch`` draws its last
    picture with it once the file is complete).

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.mib`` being written.
    frame_shape : tuple of int
        ``(rows, cols)`` of one frame.
    navigation_shape : tuple of int, optional
        The scan in HyperSpy order ``(x, y)``, as for ``hs.load``.
    """

    def __init__(self, path, frame_shape: tuple[int, int], navigation_shape=None):
        self.path, self.navigation_shape = Path(path), navigation_shape
        self.total = np.zeros(frame_shape, np.float64)
        self.frames = 0
        self.vbf = np.full(1024, np.nan)  # counts in the aperture, by index in the acquisition
        self.disc = (frame_shape[0] / 2, frame_shape[1] / 2, min(frame_shape) / 8)
        self.mask = None

    def add(self, first: int, frames: np.ndarray) -> None:
        """Add ``frames`` (rows in file order) whose first has index ``first`` in the acquisition."""
        frames = frames[:, ::-1]
        self.total += frames.sum(axis=0, dtype=np.float64)
        self.frames += len(frames)
        if self.mask is None:
            self.disc = aperture(self.total / self.frames)
            self.mask = disc_mask(self.total.shape, self.disc)
        stop = first + len(frames)
        if stop > self.vbf.size:
            grown = np.full(max(stop, 2 * self.vbf.size), np.nan)
            grown[: self.vbf.size] = self.vbf
            self.vbf = grown
        self.vbf[first:stop] = frames[:, self.mask].sum(axis=1)

    def image(self) -> np.ndarray:
        """The virtual bright field shaped by the reader's plan of the file now (a strip of frames without one)."""
        seen = self.vbf[: int(np.max(np.flatnonzero(~np.isnan(self.vbf)), initial=-1)) + 1]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an acquisition in progress is "interrupted" until it ends
                plan = open_plan(self.path, Shaping(self.navigation_shape)).plans[0]
        except (OSError, ValueError):
            return seen
        numbers = plan.positions()  # indices in the acquisition, as follow hands them over
        image = np.full(numbers.shape, np.nan)
        known = (numbers >= 0) & (numbers < seen.size)
        image[known] = seen[numbers[known]]
        return image.reshape(plan.shape) if plan.shape else image

    def save(self, output, title: str) -> Path:
        """Write the picture (the aperture found again in the mean so far, for the frames still to come)."""
        mean = self.total / max(self.frames, 1)
        picture = plot_preview(mean, self.image(), self.disc, f"{title}: {self.frames} frames", output)
        if self.frames:
            self.disc = aperture(mean)
            self.mask = disc_mask(mean.shape, self.disc)
        return picture
