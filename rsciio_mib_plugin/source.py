"""Byte sources: where the bytes of a ``.mib`` file come from.

The bottom of the data flow (design.md, "Byte sources"): a local file or an
in-memory buffer, with the bytes before frame 0 (``base``) and before every
frame (``prefix``, 15 for MPX captures) that say where frames sit. Files are
read with ``pread`` into buffers the caller owns, never through a memory map,
so a file that shrinks while it is read gives :class:`MIBFormatError`
instead of a SIGBUS that would kill the process. Nothing here knows what a
header or a pixel is.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from .errors import MIBFormatError, where

_O_BINARY = getattr(os, "O_BINARY", 0)


@dataclass(frozen=True)
class Source:
    """A ``.mib`` file (``path``) or an in-memory buffer (``buffer``)."""

    name: str
    size: int
    path: str | None = None
    buffer: memoryview | None = None
    base: int = 0  # byte offset of frame 0's header
    prefix: int = 0  # bytes before each frame (MPX captures: 15)

    def pread(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer at the end)."""
        if self.buffer is not None:
            return bytes(self.buffer[offset : offset + length])
        fd = open_fd(self.path)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    def pread_many(self, offsets, length: int) -> list[bytes]:
        """``length`` bytes (fewer at the end) at each of ``offsets``, one open file."""
        if self.buffer is not None:
            return [bytes(self.buffer[o : o + length]) for o in offsets]
        fd = open_fd(self.path)
        try:
            return [os.pread(fd, length, int(o)) for o in offsets]
        finally:
            os.close(fd)


@dataclass(frozen=True)
class Segment:
    """Frames ``first .. first+count`` of an acquisition, held by one file."""

    path: str | None
    first: int
    count: int
    base: int = 0  # byte offset of frame 0's header in the file
    prefix: int = 0  # bytes before each frame (MPX captures: 15)


def segment_source(segment: Segment) -> Source:
    """The file of one segment as a :class:`Source`."""
    return Source(name=str(segment.path), size=0, path=segment.path, base=segment.base, prefix=segment.prefix)


def check_path(path) -> str:
    """The path as ``str`` if it names a regular file; a clear error otherwise.

    Special files (FIFOs, devices, sockets) are refused from ``stat`` alone,
    without opening them: opening a FIFO for reading would block.
    """
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if path == "":
        raise ValueError("`path` is an empty string: name a .mib file")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"`path`: no such file: {path!r}") from None
    except OSError as err:
        raise OSError(f"`path`: cannot read {path!r}: {err.strerror or err}") from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"`path`: {path!r} is a directory, not a .mib file")
    if not stat.S_ISREG(mode):
        raise ValueError(f"`path`: {path!r} is not a regular file (a FIFO, device or socket); it is not opened")
    return path


def open_source(path) -> Source:
    """Wrap a path (``str`` or ``os.PathLike``) or a bytes-like buffer."""
    if isinstance(path, (bytes, bytearray, memoryview)):
        view = memoryview(path).cast("B")
        return Source(name="<buffer>", size=view.nbytes, buffer=view)
    if isinstance(path, (str, os.PathLike)):
        path = check_path(path)
        return Source(name=path, size=os.path.getsize(path), path=path)
    raise TypeError(f"`path` must be a str, pathlib.Path or bytes-like buffer, not {type(path).__name__}")


def open_fd(path: str) -> int:
    """A read-only file descriptor (the file is never opened for writing)."""
    return os.open(path, os.O_RDONLY | _O_BINARY)


def read_exact(fd: int, offset: int, buffer, name: str, frame: int | None = None) -> None:
    """Fill ``buffer`` (writable, contiguous) with the file's bytes from ``offset``.

    Raises
    ------
    MIBFormatError
        When the file ends first: it was shortened after it was opened.
    """
    view = memoryview(buffer).cast("B")
    done = 0
    while done < view.nbytes:
        got = os.preadv(fd, [view[done:]], offset + done)
        if got == 0:
            raise MIBFormatError(
                f"{where(name, frame, offset)}: file shortened while reading: expected {view.nbytes} bytes, "
                f"the file ends after {done}"
            )
        done += got
