"""What people look at first, computed on the blocks of the one pass: mean and maximum pattern,
counts per frame, the virtual bright field (the previews' aperture rule), frame times and exposures."""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import MIBFormatError, MIBWarning
from ..format.frame_header import parse_evidence
from ..reader.aperture import disc_mask


@dataclass
class Summaries:
    """What people look at first, accumulated piece by piece (each thread adds into its own sums)."""

    nav: tuple[int, ...]
    frame: tuple[int, int]
    dtype: np.dtype
    scan: tuple[int, ...] = ()  # the source scan (before binning): times and exposures
    totals: np.ndarray = field(init=False)
    vbf: np.ndarray = field(init=False)
    times: np.ndarray = field(init=False)
    exposures: np.ndarray = field(init=False)
    unreadable: list = field(default_factory=list)  # (frame, reason) of headers without time or exposure
    disc: tuple[float, float, float] | None = None
    disc_frames: int = 0
    aperture: tuple[slice, slice, np.ndarray] | None = None
    parts: list = field(default_factory=list)  # [pattern sum, pattern max] of each thread
    blank: int = 0  # output positions without any frame (lost, or a negative sync_offset)
    lock: threading.Lock = field(default_factory=threading.Lock)
    local: threading.local = field(default_factory=threading.local)

    def __post_init__(self):
        self.totals = np.zeros(self.nav, np.uint64)
        self.vbf = np.zeros(self.nav, np.uint64)
        self.times = np.full(self.scan, -1, np.int64)
        self.exposures = np.full(self.scan, np.nan)

    def add_headers(self, positions: np.ndarray, frames: np.ndarray, heads: np.ndarray) -> None:
        """Times and exposures of the frame headers ``heads`` (frames ``frames`` at source scan ``positions``)."""
        real = frames >= 0
        if real.any():
            headers = np.ascontiguousarray(heads[real]).view(f"S{heads.shape[1]}").ravel()
            times, exposures = _times_and_exposures(headers, frames[real], self.unreadable)
            self.times.reshape(-1)[positions[real]] = times
            self.exposures.reshape(-1)[positions[real]] = exposures

    def set_disc(self, disc: tuple[float, float, float], frames: int) -> None:
        """The bright-field aperture (found in the mean of ``frames`` frames, :func:`.aperture_of`)."""
        self.disc, self.disc_frames = disc, frames
        self.aperture = _bounding_box(disc_mask(self.frame, self.disc))

    def add_blank(self, count: int) -> None:
        """``count`` more output positions have no frame: the mean pattern leaves them out."""
        with self.lock:
            self.blank += count

    def add(self, index: np.ndarray, frames: np.ndarray) -> None:
        """Add ``frames`` at flat scan positions ``index`` (after :meth:`set_disc`)."""
        part = getattr(self.local, "part", None)
        if part is None:
            part = self.local.part = [np.zeros(self.frame, np.uint64), np.zeros(self.frame, self.dtype)]
            self.parts.append(part)
        flat = frames.reshape(frames.shape[0], -1)
        pattern_max = frames.max(axis=0)
        np.maximum(part[1], pattern_max, out=part[1])
        # Integer sums in the frames' own type are the fast ones: add as many values as cannot
        # overflow it (4095-count frames: 16 at a time in uint16), then the partial sums wide.
        top = max(1, int(pattern_max.max()))
        group = np.iinfo(frames.dtype).max // top if frames.dtype.kind == "u" else 1
        np.add(part[0], _grouped_sum(flat, 0, group, np.uint64).reshape(self.frame), out=part[0])
        self.totals.reshape(-1)[index] = _grouped_sum(flat, 1, group, np.uint64)
        rows, cols, mask = self.aperture
        self.vbf.reshape(-1)[index] = np.einsum(
            "nij,ij->n", frames[:, rows, cols], mask.astype(frames.dtype), dtype=np.uint64
        )

    def part_of(self, index: np.ndarray, positions: np.ndarray) -> dict:
        """What this object summed of one block (output ``index``, source scan ``positions``), to
        send from a cluster worker and :meth:`merge` into the client's summaries."""
        valid = positions[positions >= 0]
        return {
            "index": index,
            "totals": self.totals.reshape(-1)[index],
            "vbf": self.vbf.reshape(-1)[index],
            "positions": valid,
            "times": self.times.reshape(-1)[valid],
            "exposures": self.exposures.reshape(-1)[valid],
            "parts": [list(p) for p in self.parts],
            "blank": self.blank,
            "unreadable": list(self.unreadable),
        }

    def merge(self, part: dict) -> None:
        """Add what a worker summed of one block (:meth:`part_of`): exactly what summing it here gives."""
        self.totals.reshape(-1)[part["index"]] = part["totals"]
        self.vbf.reshape(-1)[part["index"]] = part["vbf"]
        self.times.reshape(-1)[part["positions"]] = part["times"]
        self.exposures.reshape(-1)[part["positions"]] = part["exposures"]
        self.parts.extend(part["parts"])
        self.blank += part["blank"]
        self.unreadable.extend(part["unreadable"])

    @property
    def sum_pattern(self) -> np.ndarray:
        return sum((p[0] for p in self.parts), np.zeros(self.frame, np.uint64))

    @property
    def max_pattern(self) -> np.ndarray:
        return np.maximum.reduce([p[1] for p in self.parts] or [np.zeros(self.frame, self.dtype)])

    def metadata(self, name: str) -> dict:
        """``metadata.Summaries`` of the archive; frames whose time or exposure is unreadable are warned about."""
        if self.unreadable:
            unreadable = sorted(self.unreadable)
            listed = ", ".join(str(f) for f, _ in unreadable[:5]) + (", ..." if len(unreadable) > 5 else "")
            warnings.warn(
                f"{name}: the time or exposure of {len(unreadable)} frame(s) ({listed}) cannot be "
                f"read ({unreadable[0][1]}); Summaries hold -1 and NaN for them",
                MIBWarning,
                stacklevel=5,
            )
        present = max(1, int(np.prod(self.nav)) - self.blank)
        return {
            # over the positions that have frames: a lost frame is no pattern of zeros
            "mean_pattern": (self.sum_pattern / present).astype(np.float32),
            "max_pattern": self.max_pattern,
            # one frame: arrays of one value (HyperSpy's writers cannot store 0-d arrays)
            "frame_totals": np.atleast_1d(self.totals),
            "virtual_bright_field": {
                "image": np.atleast_1d(self.vbf),
                "centre_row": self.disc[0],
                "centre_col": self.disc[1],
                "radius": self.disc[2],
                "aperture_from": f"the mean pattern of {self.disc_frames} frames spread evenly over the scan",
            },
            "frame_start_times_ns": np.atleast_1d(self.times),
            "frame_exposures_ms": np.atleast_1d(self.exposures),
            "note": "times and exposures of the frames read, in scan order (before binning); -1 and NaN where "
            "unknown (blank frames, frames left out of the bins, headers that do not say)",
        }


def _grouped_sum(a: np.ndarray, axis: int, group: int, wide) -> np.ndarray:
    """Sum the 2-D ``a`` along ``axis``: runs of ``group`` values in ``a``'s own type, then in ``wide``.

    Along the rows (``axis=1``) the runs are taken a row's length apart, so that
    both stages add whole contiguous rows: numpy's reduction along a short
    contiguous axis, converting as it goes, ran ten times slower here.
    """
    length = a.shape[axis]
    group = min(group, length)
    if axis == 1:
        group = next(g for g in range(min(group, 64), 0, -1) if length % g == 0)
        if group == 1:
            return a.sum(axis=1, dtype=wide)
        return a.reshape(a.shape[0], group, -1).sum(axis=1, dtype=a.dtype).sum(axis=1, dtype=wide)
    if group <= 1:
        return a.sum(axis=0, dtype=wide)
    whole = length - length % group
    parts = a[:whole].reshape(whole // group, group, -1).sum(axis=1, dtype=a.dtype).sum(axis=0, dtype=wide)
    return parts + a[whole:].sum(axis=0, dtype=wide)


def _times_and_exposures(headers: np.ndarray, numbers: np.ndarray, unreadable: list) -> tuple:
    """Times (ns, -1 unknown) and exposures (ms, NaN unknown) of ``headers`` (frames ``numbers``).

    When any header is malformed, or any time unreadable, each is parsed on its
    own: the malformed ones are added to ``unreadable`` as ``(frame number,
    reason)``, the others keep what they say.
    """
    try:
        stamps, ms, _ = parse_evidence(headers)
        if stamps is not None or len(headers) == 1:
            return (-1 if stamps is None else stamps), ms
    except MIBFormatError:
        pass
    times, exposures = np.full(len(headers), -1, np.int64), np.full(len(headers), np.nan)
    for j, number in enumerate(numbers.tolist()):
        try:
            stamps, ms, _ = parse_evidence(headers[j : j + 1], number)
        except MIBFormatError as err:
            unreadable.append((number, str(err)))
            continue
        times[j] = -1 if stamps is None else stamps[0]
        exposures[j] = ms[0]
    return times, exposures


def _bounding_box(mask: np.ndarray) -> tuple[slice, slice, np.ndarray]:
    """Rows and columns around the True pixels of ``mask``, and the mask there."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return slice(0, 0), slice(0, 0), mask[:0, :0]
    box = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    return box[0], box[1], mask[box]
