"""Turn frame payloads into pixels (pure numpy, vectorised over frames).

Processed frames (``U08``/``U16``/``U32``) are big-endian integers in row-major
order (mib-format.md §4.1). RAW (``R64``) frames are 64-bit big-endian words
holding 64/s pixels each, pixel k in bits ``[k*s, (k+1)*s)`` counted from the
least significant bit (§4.2); quad RAW rows hold one row of each chip and need
reassembling (§4.5).
"""

from __future__ import annotations

import numpy as np

from .layout import Geometry

_MASKS = {6: 0x3F, 12: 0xFFF}


def decode_frames(payload: np.ndarray, geometry: Geometry, out: np.ndarray | None = None) -> np.ndarray:
    """Decode ``(n, payload_bytes)`` uint8 payloads into ``(n, rows, cols)`` pixels.

    Parameters
    ----------
    payload : numpy.ndarray
        uint8 array, one row of ``geometry.payload_bytes`` per frame.
    geometry : Geometry
        The file's frame geometry.
    out : numpy.ndarray, optional
        Native-endian ``(n, rows, cols)`` array to write into.
    """
    n = payload.shape[0]
    if out is None:
        out = np.empty((n,) + geometry.shape, dtype=geometry.dtype)
    if not geometry.raw:
        out[...] = payload.view(geometry.file_dtype).reshape((n,) + geometry.shape)
        return out
    height, width = geometry.stored_shape
    if geometry.depth == 24:
        # Two 12-bit planes, most significant first (§4.3; LiberTEM's reading,
        # unverified on real pixel data). Each plane is half the header width.
        half = payload.shape[1] // 2
        hi = _unpack(payload[:, :half], 12).reshape(n, height, width // 2)
        lo = _unpack(payload[:, half:], 12).reshape(n, height, width // 2)
        stored = (hi.astype(np.uint32) << 12) | lo
    else:
        stored = _unpack(payload, geometry.depth).reshape(n, height, width)
    if geometry.layout in ("2x2", "2x2G"):
        _assemble_quad(stored, out, gap=2 if geometry.layout.endswith("G") else 0)
    else:
        out[...] = stored
    return out


def _unpack(payload: np.ndarray, depth: int) -> np.ndarray:
    """RAW words to a flat pixel sequence per frame, in readout order."""
    n = payload.shape[0]
    # Reversing the bytes of each 64-bit word turns "bits k*s of a big-endian
    # word" into a little-endian packed stream (§4.2).
    swapped = np.ascontiguousarray(payload).view(">u8").astype("<u8").view(np.uint8).reshape(n, -1)
    if depth == 1:
        return np.unpackbits(swapped, axis=1, bitorder="little")
    if depth == 6:
        return swapped & _MASKS[6]
    return swapped.view("<u2") & np.uint16(_MASKS[12])


def _assemble_quad(stored: np.ndarray, out: np.ndarray, gap: int) -> None:
    """Place the four chips of quad RAW rows into the processed orientation.

    Raw row r holds row r of chips [4 | 3 | 2 | 1]; chips 1 and 2 go to the top
    half as they are, chips 3 and 4 to the bottom half rotated by 180 degrees
    (mib-format.md §4.5, verified on the quad test pattern).
    """
    rows = stored.shape[1]
    c = 256
    if gap:
        out[...] = 0
    bottom = rows + gap
    out[:, :rows, :c] = stored[:, :, 3 * c : 4 * c]
    out[:, :rows, c + gap :] = stored[:, :, 2 * c : 3 * c]
    out[:, bottom:, :c] = stored[:, ::-1, 2 * c - 1 : c - 1 : -1]
    out[:, bottom:, c + gap :] = stored[:, ::-1, c - 1 :: -1]
