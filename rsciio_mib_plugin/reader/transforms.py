"""Geometry done while reading: the quad's chip gap and sum binning (pure numpy).

Frames are decoded first, then gapped, then binned in the detector plane,
then summed over blocks of scan positions; the reader applies this block by
block, so a binned load never holds the full-size array.

The four chips of a Merlin quad are physically apart, but a ``2x2`` frame
abuts them (512×512) and a ``2x2G`` frame puts 2 empty pixels between them
(514×514); pyxem and Diamond's ePSIC tools insert a 3-pixel cross (515×515)
before azimuthal integration (rosettasciio #219, docs/format.md §4.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..format.decode import CHIP, respace_chips
from ..format.geometry import Geometry

_UNSIGNED = (np.uint8, np.uint16, np.uint32, np.uint64)


@dataclass(frozen=True)
class Transform:
    """What to do to every frame and scan while reading.

    ``flip`` is the orientation: rows reversed as they are decoded, so the
    image reads as the Merlin software shows it (file row 0 at the bottom,
    docs/format.md §5); ``hs.load`` flips, ``load_mib_data`` keeps file order.
    """

    quad_gap: int | None = None  # pixels between the chips; None: as stored
    bin_signal: int = 1
    bin_navigation: int = 1
    stored_gap: int = 0  # pixels between the chips in the file (2x2G: 2)
    out_dtype: str = ""  # of the binned sums; "" without binning
    flip: bool = False

    @property
    def plain(self) -> bool:
        """No chip gap to place and nothing to bin: frames are decoded (and oriented) straight into the output.

        A ``quad_gap`` equal to a ``2x2G`` file's stored gap is not plain: the gap is zero-filled as
        for every other ``quad_gap`` (the stored gap may hold counts the Merlin software spread there).
        """
        gap_as_stored = self.quad_gap is None or self.quad_gap == self.stored_gap == 0
        return gap_as_stored and self.bin_signal == 1 and self.bin_navigation == 1

    def frame_shape(self, geometry: Geometry) -> tuple[int, int]:
        rows, cols = self.gapped_shape(geometry)
        return rows // self.bin_signal, cols // self.bin_signal

    def gapped_shape(self, geometry: Geometry) -> tuple[int, int]:
        if self.quad_gap is None:
            return geometry.shape
        return 2 * CHIP + self.quad_gap, 2 * CHIP + self.quad_gap

    def dtype(self, geometry: Geometry) -> np.dtype:
        return np.dtype(self.out_dtype) if self.out_dtype else geometry.dtype

    def navigation_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(n // self.bin_navigation for n in shape)

    def gap_pixels(self) -> list[int]:
        """Rows (and columns) of the gap, before signal binning."""
        return list(range(CHIP, CHIP + self.quad_gap)) if self.quad_gap else []

    def mask(self, geometry: Geometry) -> np.ndarray | None:
        """True for pixels made of gap (after binning: any gap pixel in the bin), or None."""
        if self.quad_gap is None:
            return None
        rows, cols = self.gapped_shape(geometry)
        mask = np.zeros((rows, cols), bool)
        mask[CHIP : CHIP + self.quad_gap, :] = True
        mask[:, CHIP : CHIP + self.quad_gap] = True
        b = self.bin_signal
        return mask.reshape(rows // b, b, cols // b, b).any(axis=(1, 3))

    def signal(self, frames: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Gap, then bin ``(n, rows, cols)`` decoded frames, into ``out`` (new memory, or
        ``frames`` itself when there is nothing to do and no ``out``)."""
        if self.quad_gap is not None and (self.quad_gap or self.stored_gap):  # placed, the gap zero-filled
            frames = respace_chips(frames, self.stored_gap, self.quad_gap, out if self.bin_signal == 1 else None)
        if self.bin_signal == 1:
            if out is not None and frames is not out:
                out[...] = frames
                return out
            return frames
        n, rows, cols = frames.shape
        b = self.bin_signal
        if out is None:
            out = np.empty((n, rows // b, cols // b), self.out_dtype)
        return bin_sum(frames, b, out)


#: Frames binned per pass: the column sums stay in the CPU cache (16 MB of 12-bit frames
#: binned 2x2 in 3.3 ms instead of 4.0).
BIN_GROUP = 16


def bin_sum(frames: np.ndarray, b: int, out: np.ndarray) -> np.ndarray:
    """Sum ``b`` x ``b`` bins of ``(n, rows, cols)`` frames into ``out``.

    Added as ``b`` strided slices per axis: whole-array adds, several times
    faster than numpy's sum over the reshaped bin axes (inner loops of ``b``),
    :data:`BIN_GROUP` frames at a time.
    """
    n, rows, width = frames.shape
    cols = np.empty((min(n, BIN_GROUP), rows, width // b), out.dtype)
    for i in range(0, n, BIN_GROUP):
        part, into = frames[i : i + BIN_GROUP], out[i : i + BIN_GROUP]
        c = cols[: len(part)]
        np.add(part[:, :, 0::b], part[:, :, 1::b], out=c, dtype=out.dtype)
        for k in range(2, b):
            c += part[:, :, k::b]
        np.add(c[:, 0::b, :], c[:, 1::b, :], out=into)
        for k in range(2, b):
            into += c[:, k::b, :]
    return out


def check_transform(
    quad_gap, bin_signal, bin_navigation, geometry: Geometry, nav_shape: tuple[int, ...], name: str, flip: bool = False
) -> Transform:
    """Validate the keywords against the file; a clear error naming the argument otherwise."""
    for key, value, low in (
        ("quad_gap", quad_gap, 0),
        ("bin_signal", bin_signal, 1),
        ("bin_navigation", bin_navigation, 1),
    ):
        if value is None and key == "quad_gap":
            continue
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"`{key}` must be an integer, not {value!r}")
        if value < low:
            raise ValueError(f"`{key}` must be >= {low}, not {value}")
    stored_gap = geometry.stored_gap
    if quad_gap is not None:
        quad = geometry.quad and geometry.shape == (2 * CHIP + stored_gap,) * 2
        if not quad:
            raise ValueError(
                f"`quad_gap`={quad_gap} needs whole quad frames (2x2 or 2x2G, 512 or 514 pixels square); "
                f"{name} has {geometry.layout.strip()} frames of {geometry.shape[1]}x{geometry.shape[0]} pixels"
            )
        if quad_gap > CHIP:
            raise ValueError(f"`quad_gap` must be at most {CHIP} pixels, not {quad_gap}")
    transform = Transform(
        quad_gap=int(quad_gap) if quad_gap is not None else None,
        bin_signal=int(bin_signal),
        bin_navigation=int(bin_navigation),
        stored_gap=stored_gap,
        out_dtype=sum_dtype(geometry, int(bin_signal) ** 2 * int(bin_navigation) ** len(nav_shape)),
        flip=bool(flip),
    )
    for size in transform.gapped_shape(geometry):
        if size % transform.bin_signal:
            raise ValueError(
                f"`bin_signal`={bin_signal} does not divide the frame size {size} of {name}"
                + (f" (with quad_gap={quad_gap})" if quad_gap is not None else "")
            )
    if transform.bin_navigation > 1:
        if not nav_shape:
            raise ValueError(f"`bin_navigation`={bin_navigation} needs a scan; {name} is read as a single frame")
        for size in nav_shape:
            if size % transform.bin_navigation:
                raise ValueError(
                    f"`bin_navigation`={bin_navigation} does not divide the navigation size {size} of {name} "
                    f"(navigation shape {tuple(nav_shape[::-1])}; set navigation_shape or first_frame/last_frame)"
                )
    return transform


def sum_dtype(geometry: Geometry, pixels: int) -> str:
    """The smallest unsigned type, at least as wide as the frames', that holds a sum of
    ``pixels`` counts at the counter depth (12-bit binned 2×2 stays uint16: 4 × 4095
    < 65536; 16×16 becomes uint32); "" when nothing is summed."""
    if pixels == 1:
        return ""
    largest = (1 << geometry.depth) - 1 if geometry.depth else np.iinfo(geometry.dtype).max
    for kind in _UNSIGNED:
        if np.dtype(kind).itemsize >= geometry.dtype.itemsize and largest * pixels <= np.iinfo(kind).max:
            return np.dtype(kind).name
    raise ValueError(f"sums of {pixels} pixels of {largest} counts do not fit in 64 bits: bin less")


def grouped_frames(frame_numbers, nav_slices: tuple[slice, ...], factor: int) -> np.ndarray:
    """Frame numbers of the output positions under ``nav_slices``, one row of
    ``factor ** ndim`` source frames (the bin) per output position, C order.

    ``frame_numbers(source_slices)`` gives the file frames of source positions.
    """
    source = tuple(slice(s.start * factor, s.stop * factor) for s in nav_slices)
    frames = np.asarray(frame_numbers(source or None))
    if factor == 1 or not nav_slices:
        return frames.reshape(-1, 1)
    sizes = [s.stop - s.start for s in source]
    frames = frames.reshape([v for n in sizes for v in (n // factor, factor)])
    d = len(sizes)
    order = list(range(0, 2 * d, 2)) + list(range(1, 2 * d, 2))
    return frames.transpose(order).reshape(-1, factor**d)
