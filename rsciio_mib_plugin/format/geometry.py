"""Geometry of a ``.mib`` file: frame size and frame count (scan shapes: ``scan.py``).

Pure functions on numbers and header records; no file access here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MIBFormatError, where
from .frame_header import PROCESSED_BITS, RAW_SLOT_BITS, FrameHeader, stored_gap

#: Chips per quad layout and the decoded frame shape (docs/format.md §4.5, §8).
QUAD_LAYOUTS = ("2x2", "2x2G")


@dataclass(frozen=True)
class Geometry:
    """How one frame is stored and what it decodes to."""

    header_bytes: int
    payload_bytes: int
    stored_shape: tuple[int, int]  # (height, width) as the header states them
    shape: tuple[int, int]  # (rows, cols) of the decoded frame
    file_dtype: np.dtype  # big-endian pixel type in the file (uint64 words for RAW)
    dtype: np.dtype  # native dtype handed to users
    raw: bool
    depth: int | None
    layout: str
    # Bytes every frame header must repeat: fields 2-7 (header length .. layout)
    # between commas, and the MQ1A counter depth that ends the header text.
    signature: bytes = b""
    depth_field: bytes = b""

    @property
    def frame_bytes(self) -> int:
        return self.header_bytes + self.payload_bytes

    @property
    def quad(self) -> bool:
        """Four chips in a square (``2x2`` or ``2x2G``)."""
        return self.layout.strip() in QUAD_LAYOUTS

    @property
    def stored_gap(self) -> int:
        """Pixels between the chips as the frames are stored (docs/format.md §8)."""
        return stored_gap(self.layout)

    def offset(self, frame, base: int = 0, prefix: int = 0):
        """Byte offset of the header of ``frame`` (an int or an array of them).

        Frames follow each other from ``base`` (the first frame's header),
        each ``prefix`` bytes (an MPX capture's message prefix) plus
        :attr:`frame_bytes` long (docs/format.md §1, §12).
        """
        return base + frame * (prefix + self.frame_bytes)


def frame_geometry(header: FrameHeader, hdr_depth: int | None = None, source: str = "<buffer>") -> Geometry:
    """Frame geometry from the first header (and the ``.hdr`` depth for RAW).

    Raises
    ------
    MIBFormatError
        For RAW frames without a usable counter depth, or with a shape the
        RAW layout cannot hold.
    """
    height, width = header.height, header.width
    layout = header.layout
    fields = header.fields
    checks = {
        "signature": ("," + ",".join(fields[2:8]) + ",").encode("ascii") if len(fields) > 7 else b"",
        "depth_field": (
            ("," + fields[-1] + ",").encode("ascii")
            if header.counter_depth is not None and fields[-1].strip() == str(header.counter_depth)
            else b""
        ),
    }
    if not header.raw:
        bits = PROCESSED_BITS[header.pixel_type]
        file_dtype = np.dtype(f">u{bits // 8}")
        return Geometry(
            header_bytes=header.header_bytes,
            payload_bytes=width * height * bits // 8,
            stored_shape=(height, width),
            shape=(height, width),
            file_dtype=file_dtype,
            dtype=file_dtype.newbyteorder("="),
            raw=False,
            depth=header.counter_depth,
            layout=layout,
            **checks,
        )

    # RAW: the frame header states the depth only in its MQ1A extension; older
    # files need the .hdr "Counter Depth" (docs/format.md §2.3, §2.4).
    depth = header.counter_depth if header.counter_depth is not None else hdr_depth
    if depth is None:
        raise MIBFormatError(
            f"{where(source, 0, 0)}: RAW (R64) frame without a counter depth: the frame "
            "header has no MQ1A extension and there is no .hdr 'Counter Depth' to use"
        )
    if depth not in RAW_SLOT_BITS:
        raise MIBFormatError(f"{where(source, 0, 0)}: RAW counter depth is {depth}, expected one of 1, 6, 12, 24")
    payload_bits = width * height * RAW_SLOT_BITS[depth]
    if payload_bits % 64:
        raise MIBFormatError(
            f"{where(source, 0, 0)}: RAW frame of {width}x{height} pixels at {depth} bit "
            "does not fill whole 64-bit words"
        )
    # 24 bit: two 12-bit planes, so the header width is twice the real one (§4.3).
    real_width = width // 2 if depth == 24 else width
    if layout in QUAD_LAYOUTS:
        # Quad RAW rows hold one row of each of the 4 chips side by side (§4.5).
        if real_width != 1024:
            raise MIBFormatError(
                f"{where(source, 0, 0)}: quad RAW frame is {width} pixels wide, expected "
                f"{2048 if depth == 24 else 1024} (four 256-pixel chips per row)"
            )
        gap = stored_gap(layout)
        shape = (2 * height + gap, 512 + gap)
    elif layout == "1x1":
        shape = (height, real_width)
    else:
        raise MIBFormatError(
            f"{where(source, 0, 0)}: RAW frames with the {layout!r} layout are not "
            "supported (only 1x1, 2x2 and 2x2G; docs/format.md §4.5)"
        )
    out_bits = {1: 8, 6: 8, 12: 16, 24: 32}[depth]
    return Geometry(
        header_bytes=header.header_bytes,
        payload_bytes=payload_bits // 8,
        stored_shape=(height, width),
        shape=shape,
        file_dtype=np.dtype(">u8"),
        dtype=np.dtype(f"u{out_bits // 8}"),
        raw=True,
        depth=depth,
        layout=layout,
        **checks,
    )


def count_frames(size: int, geometry: Geometry, source: str = "<buffer>", prefix: int = 0) -> tuple[int, int]:
    """Number of complete frames in ``size`` bytes and the bytes left over.

    ``prefix`` bytes precede every frame (MPX captures). A truncated last frame
    is left out (docs/format.md §11).
    """
    n, rest = divmod(size, geometry.frame_bytes + prefix)
    if n == 0:
        raise MIBFormatError(
            f"{source}: {size} bytes hold no complete frame: the first header states "
            f"{geometry.stored_shape[1]}x{geometry.stored_shape[0]} pixels, "
            f"{geometry.frame_bytes} bytes per frame"
        )
    return n, rest
