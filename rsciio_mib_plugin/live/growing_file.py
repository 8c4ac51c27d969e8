"""Frames of a ``.mib`` file another program is still writing."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import MIBFormatError, MIBWarning
from ..format.decode import decode_frames
from ..format.frame_header import read_header, reading_from
from ..format.geometry import Geometry, frame_geometry
from ..format.hdr_file import COUNTER_DEPTH, FRAMES_IN_ACQUISITION, MAX_HDR_BYTES, hdr_int
from ..format.header_check import check_headers
from ..reader.frames import BLOCK_BYTES
from ..reader.side_file import find_hdr, read_hdr
from ..sources.source import Segment, check_path, open_fd, pread, read_exact
from .acquisition import Sequence, check_arguments, runs


def follow(
    path,
    *,
    frames: int | None = None,
    timeout: float = 10.0,
    block_frames: int | None = None,
    poll: float = 0.05,
) -> Iterator[tuple[int, np.ndarray]]:
    """Decoded frames of a ``.mib`` file another program is still writing.

    A frame is handed over once it is complete on disk. Ends at the expected
    number of frames (``frames``, else the ``.hdr``'s "Frames in Acquisition"
    unless 0) or when the file has not grown for ``timeout`` seconds.

    Parameters
    ----------
    path : str or pathlib.Path
        The growing ``.mib`` file (waited for up to ``timeout`` seconds).
    frames, timeout, block_frames
        As for :func:`stream`.
    poll : float
        Seconds between looks at the file's size.

    Yields
    ------
    (int, numpy.ndarray)
        As :func:`stream`: the acquisition index of the block's first frame
        and ``(n, rows, cols)`` frames, decoded as :func:`load_mib_data` does.
    """
    check_arguments(frames, timeout, block_frames)
    path = Path(path)
    name = str(path)
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: the file did not appear within {timeout} s")
        time.sleep(poll)
    check_path(path)
    fd = open_fd(name)
    try:
        geometry, hdr = _wait_for_first_header(fd, path, timeout, poll)
        expected = frames or hdr_int(hdr, FRAMES_IN_ACQUISITION) or None
        per_block = block_frames or max(1, BLOCK_BYTES // geometry.frame_bytes)
        buffer = np.empty(per_block * geometry.frame_bytes, np.uint8)
        sequence, done, last_growth, size = Sequence(), 0, time.monotonic(), 0
        segment = Segment(path=name, first=0, count=0)
        same = SameAcquisition(fd, path, geometry.header_bytes)
        while expected is None or sequence.seen < expected:
            new_size = os.fstat(fd).st_size
            if new_size < size:
                raise MIBFormatError(
                    f"{name}: the file shrank from {size} to {new_size} bytes after {done} frames were handed over"
                )
            same.check(done)
            if new_size > size:
                size, last_growth = new_size, time.monotonic()
            available = size // geometry.frame_bytes - done
            if expected is not None:
                available = min(available, expected - sequence.seen)
            if available <= 0:
                if time.monotonic() - last_growth > timeout:
                    if expected is not None:
                        warnings.warn(
                            f"{name}: the file stopped growing at {done} complete frames of {expected} expected "
                            f"(nothing new for {timeout} s)",
                            MIBWarning,
                            stacklevel=2,
                        )
                    break
                time.sleep(poll)
                continue
            n = min(available, per_block)
            block = buffer[: n * geometry.frame_bytes].reshape(n, geometry.frame_bytes)
            read_exact(fd, geometry.offset(done), block, name, done)
            heads = block[:, : geometry.header_bytes]
            check_headers(heads, geometry, name, done, segment)
            indices = sequence.indices(heads, name, done, lambda i, d=done: geometry.offset(d + i))
            for a, b, first in runs(indices):
                yield first, decode_frames(block[a:b, geometry.header_bytes :], geometry)
            done += n
        sequence.report(name, stacklevel=3)
    finally:
        os.close(fd)


class SameAcquisition:
    """What tells the followed acquisition from another one later written to the same path: the
    file itself (not one renamed over it), frame 0's header (its start time, settings) and the
    ``.hdr`` (one per acquisition, mib-format.md §1) as first seen.

    A file cut to nothing and rewritten between two looks, with a byte-identical first header
    (no time stamps) and ``.hdr``, cannot be told from one that grew.
    """

    def __init__(self, fd: int, path: Path, header_bytes: int):
        self.fd, self.path, self.header_bytes = fd, path, header_bytes
        self.inode = _inode(os.fstat(fd))
        self.first_header = pread(fd, header_bytes, 0)
        self.hdr_path = find_hdr(path)
        self.hdr = self._hdr_text()

    def _hdr_text(self) -> bytes | None:
        try:
            with open(self.hdr_path, "rb") as f:
                return f.read(MAX_HDR_BYTES)
        except (OSError, TypeError):  # none, or gone
            return None

    def check(self, done: int) -> None:
        """Raise :class:`MIBFormatError` if the path no longer holds the acquisition first seen."""
        after = f"after {done} frames were handed over"
        try:
            now = _inode(os.stat(self.path))
        except FileNotFoundError:
            now = None
        if now != self.inode:
            raise MIBFormatError(f"{self.path}: the file was {'removed' if now is None else 'replaced'} {after}")
        if pread(self.fd, self.header_bytes, 0) != self.first_header:
            raise MIBFormatError(f"{self.path}: frame 0's header changed {after}: the file was rewritten")
        if self.hdr is not None and self._hdr_text() != self.hdr:
            raise MIBFormatError(f"{self.hdr_path}: the .hdr changed {after}: another acquisition was started")


def _inode(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino


def _header_so_far(fd: int, name: str):
    """The first frame header of a file being written, or ``None`` while it is not all there yet."""
    read, short = reading_from(lambda offset, n: pread(fd, n, offset), 0), []

    def more(n: int) -> bytes:
        data = read(n)
        if len(data) < n:
            short.append(n)
        return data

    try:
        return read_header(more, name)[0]
    except MIBFormatError:
        if short:  # cut off where the writer has got to: not malformed (yet)
            return None
        raise


def _wait_for_first_header(fd: int, path: Path, timeout: float, poll: float) -> tuple[Geometry, dict | None]:
    """The geometry from the first frame header once it is on disk (and the ``.hdr``, if any)."""
    name = str(path)
    deadline = time.monotonic() + timeout
    while True:
        header = _header_so_far(fd, name)
        if header is not None:
            hdr_path = find_hdr(path)
            hdr = read_hdr(hdr_path) if hdr_path else None
            try:
                return frame_geometry(header, hdr_int(hdr, COUNTER_DEPTH), name), hdr
            except MIBFormatError:
                # RAW without MQ1A needs the .hdr's depth: it may not be written yet.
                if hdr is not None or time.monotonic() > deadline:
                    raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: no complete frame header within {timeout} s")
        time.sleep(poll)
