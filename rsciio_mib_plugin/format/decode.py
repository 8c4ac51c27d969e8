"""Turn frame payloads into pixels (pure numpy, vectorised over frames).

Processed frames (``U08``/``U16``/``U32``) are big-endian integers in row-major
order (docs/format.md §4.1). RAW (``R64``) frames are 64-bit big-endian words
holding 64/s pixels each, pixel k in bits ``[k*s, (k+1)*s)`` counted from the
least significant bit (§4.2); quad RAW rows hold one row of each chip and need
reassembling (§4.5).
"""

from __future__ import annotations

import numpy as np

from .geometry import Geometry
from .totals import count_while_converting, frame_totals

_MASKS = {6: 0x3F, 12: 0xFFF}
CHIP = 256  # pixels per chip side


def decode_frames(
    payload: np.ndarray,
    geometry: Geometry,
    out: np.ndarray | None = None,
    gap: int | None = None,
    totals: np.ndarray | None = None,
) -> np.ndarray:
    """Decode ``(n, payload_bytes)`` uint8 payloads into ``(n, rows, cols)`` pixels.

    Parameters
    ----------
    payload : numpy.ndarray
        uint8 array, one row of ``geometry.payload_bytes`` per frame.
    geometry : Geometry
        The file's frame geometry.
    out : numpy.ndarray, optional
        Native-endian ``(n, rows, cols)`` array to write into.
    gap : int, optional
        Quad frames only: pixels between the chips in ``out`` (placed there
        directly, no second copy); ``None`` keeps the file's layout.
    totals : numpy.ndarray, optional
        ``(n,)`` uint64: receives each frame's counts, taken while the frames
        are decoded (:func:`.count_while_converting`) or just after, from the
        CPU cache (:func:`.frame_totals`).
    """
    n = payload.shape[0]
    stored_gap = geometry.stored_gap
    as_stored = gap is None or gap == stored_gap == 0  # an explicit gap is zero-filled, even the stored one
    if gap is None:
        gap = stored_gap
    if out is None:
        out = np.empty((n,) + (geometry.shape if gap == stored_gap else (512 + gap,) * 2), dtype=geometry.dtype)
    if not geometry.raw:
        pixels = payload.view(geometry.file_dtype).reshape((n,) + geometry.shape)
        if as_stored and totals is not None and count_while_converting(pixels, out, totals):
            return out
        if as_stored:
            _convert(pixels, out)
        else:
            respace_chips(pixels, stored_gap, gap, out)
        return _counted(out, geometry, totals)
    height, width = geometry.stored_shape
    if geometry.depth == 24:
        # Two 12-bit planes, most significant first (§4.3; LiberTEM's reading,
        # unverified on real pixel data). Each plane is half the header width.
        half = payload.shape[1] // 2
        hi = _unpack(payload[:, :half], 12).reshape(n, height, width // 2)
        lo = _unpack(payload[:, half:], 12).reshape(n, height, width // 2)
        stored = (hi.astype(np.uint32) << 12) | lo
    elif geometry.quad:
        # Quad 1-bit stays packed until the chips are in place.
        stored = _stream(payload, geometry.depth).reshape(n, height, -1)
    else:
        stored = _unpack(payload, geometry.depth).reshape(n, height, width)
    if geometry.quad:
        _assemble_quad(stored, out, gap=gap, packed=geometry.depth == 1)
    else:
        out[...] = stored
    return _counted(out, geometry, totals)


def _counted(out: np.ndarray, geometry: Geometry, totals: np.ndarray | None) -> np.ndarray:
    if totals is not None:  # counted upright: a row-reversed view would be counted slowly
        totals[...] = frame_totals(out[:, ::-1] if out.strides[1] < 0 else out, geometry.depth)
    return out


#: Frames converted per pass into a view with reversed rows (see :func:`_convert`).
FLIP_GROUP = 16
#: Pixels up to this size are taken to be in the CPU cache (just read, a few frames at a time).
CACHED_BYTES = 2 << 20


def _convert(pixels: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = pixels`` (big-endian to native), fast also when ``out`` reverses the rows.

    numpy's converting copy into a view with a negative row stride took 4.0 ms
    per 16 MB here when the pixels came from memory, against 0.7 ms into a plain
    array: so a few frames at a time are converted into a small contiguous
    buffer (in the CPU cache) and then copied, without conversion, into the
    reversed view (1.5 ms in all). From pixels already in the cache the
    converting copy is as fast as into a plain array, and is made directly.
    """
    if out.ndim < 3 or out.strides[1] >= 0 or pixels.dtype == out.dtype or pixels.nbytes <= CACHED_BYTES:
        out[...] = pixels
        return
    buffer = np.empty((min(len(pixels), FLIP_GROUP),) + pixels.shape[1:], out.dtype)
    for i in range(0, len(pixels), FLIP_GROUP):
        part = buffer[: len(pixels[i : i + FLIP_GROUP])]
        part[...] = pixels[i : i + FLIP_GROUP]
        out[i : i + FLIP_GROUP] = part


def _stream(payload: np.ndarray, depth: int) -> np.ndarray:
    """RAW words as a little-endian stream of slots: bytes holding 8 pixels
    (1 bit, LSB first), bytes (6 bit) or uint16 (12 bit), in readout order."""
    n = payload.shape[0]
    # Reversing the bytes of each 64-bit word turns "bits k*s of a big-endian
    # word" into a little-endian packed stream (§4.2).
    swapped = np.ascontiguousarray(payload).view(">u8").astype("<u8").view(np.uint8).reshape(n, -1)
    if depth == 1:
        return swapped
    if depth == 6:
        return swapped & np.uint8(_MASKS[6])
    return swapped.view("<u2") & np.uint16(_MASKS[12])


def _unpack(payload: np.ndarray, depth: int) -> np.ndarray:
    """RAW words to a flat pixel sequence per frame, in readout order."""
    stream = _stream(payload, depth)
    return np.unpackbits(stream, axis=1, bitorder="little") if depth == 1 else stream


# Bit-reversed bytes: unpacking them LSB first reads a byte's pixels backwards.
_REVERSED_BITS = np.array([int(f"{i:08b}"[::-1], 2) for i in range(256)], dtype=np.uint8)


#: Frames assembled per pass: the intermediate arrays stay in the CPU cache (unpacking and
#: placing 1-bit quad frames 8 at a time took 7 ms per 256 frames instead of 18, gapped 13 instead of 29).
GROUP = 8


def _assemble_quad(stored: np.ndarray, out: np.ndarray, gap: int, packed: bool) -> None:
    """Place the four chips of quad RAW rows into the processed orientation.

    Raw row r holds row r of chips [4 | 3 | 2 | 1]; chips 1 and 2 go to the top
    half as they are, chips 3 and 4 to the bottom half rotated by 180 degrees
    (docs/format.md §4.5, verified on the quad test pattern). ``stored`` holds
    pixels or, when ``packed`` (1 bit), bytes of 8 pixels, which are rearranged
    before they are unpacked (8 times less data to move).
    """
    for i in range(0, stored.shape[0], GROUP):
        _assemble_group(stored[i : i + GROUP], out[i : i + GROUP], gap, packed)


def _assemble_group(stored: np.ndarray, out: np.ndarray, gap: int, packed: bool) -> None:
    n, rows, width = stored.shape
    c = width // 4  # one chip row, in pixels or packed bytes
    arranged = np.empty((n, 2 * rows, 2 * c), dtype=stored.dtype)
    arranged[:, :rows, :c] = stored[:, :, 3 * c :]
    arranged[:, :rows, c:] = stored[:, :, 2 * c : 3 * c]
    arranged[:, rows:, :c] = stored[:, ::-1, 2 * c - 1 : c - 1 : -1]
    arranged[:, rows:, c:] = stored[:, ::-1, c - 1 :: -1]
    if packed:
        arranged[:, rows:] = _REVERSED_BITS[arranged[:, rows:]]
        arranged = np.unpackbits(arranged, axis=2, bitorder="little")
    if not gap:
        out[...] = arranged
        return
    half = arranged.shape[2] // 2
    out[:, rows : rows + gap, :] = 0
    out[:, :, half : half + gap] = 0
    out[:, :rows, :half] = arranged[:, :rows, :half]
    out[:, :rows, half + gap :] = arranged[:, :rows, half:]
    out[:, rows + gap :, :half] = arranged[:, rows:, :half]
    out[:, rows + gap :, half + gap :] = arranged[:, rows:, half:]


def respace_chips(frames: np.ndarray, stored: int, gap: int, out: np.ndarray | None = None) -> np.ndarray:
    """Quad frames with ``stored`` pixels between the chips, re-spaced to ``gap`` zero pixels."""
    n = frames.shape[0]
    size = 2 * CHIP + gap
    if out is None:
        out = np.empty((n, size, size), frames.dtype)
    out[:, CHIP : CHIP + gap, :] = 0
    out[:, :, CHIP : CHIP + gap] = 0
    lo, hi = slice(0, CHIP), slice(CHIP + stored, 2 * CHIP + stored)
    new_hi = slice(CHIP + gap, size)
    out[:, lo, lo] = frames[:, lo, lo]
    out[:, lo, new_hi] = frames[:, lo, hi]
    out[:, new_hi, lo] = frames[:, hi, lo]
    out[:, new_hi, new_hi] = frames[:, hi, hi]
    return out
