"""Captures of the Merlin TCP data port (6342): ``MPX,`` framed messages.

Each message is ``MPX,`` + 10 decimal digits + ``,`` + body, where the number
counts the body plus one (the comma before it; the manual's prose is off by
one, docs/format.md §12). An optional first body ``HDR,...`` carries the
acquisition header (the ``.hdr``); every other body is one frame, byte for byte
as in a ``.mib`` file. So a capture reads like a ``.mib`` whose frames start
15 bytes apart from each other's ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import MIBFormatError, where
from .hdr_file import MAX_HDR_BYTES

PREFIX = 15  # "MPX," + 10 digits + ","
MAGIC = b"MPX,"


@dataclass(frozen=True)
class Capture:
    """Where the frames of a capture are."""

    hdr_text: str | None
    base: int  # byte offset of the first frame's MQ1 header
    frame_message_bytes: int  # body bytes of one frame message


def message_length(prefix: bytes, name: str, offset: int, limit: int | None = None) -> int:
    """Body length of the message whose 15-byte prefix is given (at most ``limit`` bytes)."""
    if len(prefix) < PREFIX or prefix[:4] != MAGIC or prefix[14:15] != b",":
        raise MIBFormatError(
            f"{where(name, None, offset)}: expected an 'MPX,<10 digits>,' message prefix, found {bytes(prefix[:PREFIX])!r}"
        )
    digits = prefix[4:14]
    if not digits.isdigit():
        raise MIBFormatError(f"{where(name, None, offset)}: MPX message length {digits!r} is not a number")
    length = int(digits) - 1
    if length <= 0:
        raise MIBFormatError(f"{where(name, None, offset)}: MPX message length {int(digits)} is too small")
    if limit is not None and length > limit:
        raise MIBFormatError(
            f"{where(name, None, offset)}: MPX message length {length} is more than the {limit} bytes expected"
        )
    return length


def locate(pread, size: int, name: str) -> Capture:
    """Read the first messages of a capture: the in-band header and the frame size.

    Parameters
    ----------
    pread : callable
        ``pread(offset, length) -> bytes`` on the capture.
    size : int
        Bytes in the capture.
    name : str
        For error messages.
    """
    offset, hdr_text = 0, None
    length = message_length(pread(0, PREFIX), name, 0)
    if pread(PREFIX, 4) == b"HDR,":
        # The in-band .hdr: capped like the side file, so a hostile length
        # cannot make us read the whole capture (docs/format.md §9.1, §12).
        if not 4 <= length <= MAX_HDR_BYTES:
            raise MIBFormatError(
                f"{where(name, None, 0)}: the HDR message length is {length} bytes, expected 4 to {MAX_HDR_BYTES}"
            )
        if PREFIX + length > size:
            raise MIBFormatError(f"{name}: the HDR message is cut off ({size} bytes, it needs {PREFIX + length})")
        hdr_text = pread(PREFIX + 4, length - 4).decode("latin-1")
        offset = PREFIX + length
        if offset + PREFIX > size:
            raise MIBFormatError(f"{name}: the capture holds an HDR message but no frame")
        length = message_length(pread(offset, PREFIX), name, offset)
    return Capture(hdr_text=hdr_text, base=offset + PREFIX, frame_message_bytes=length)


def frame_prefix(frame_bytes: int) -> bytes:
    """The 15 bytes before every frame message of ``frame_bytes`` bytes."""
    return MAGIC + f"{frame_bytes + 1:010d},".encode()


def mpx_message(body: bytes) -> bytes:
    """Frame one message body for the data port."""
    return frame_prefix(len(body)) + body
