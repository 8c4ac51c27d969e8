"""Live Merlin data: the detector's TCP ports, and ``.mib`` files still being written.

Imported only when used. The control port (6341) takes ``GET``/``SET``/``CMD``
requests; the data port (6342) sends one ``HDR`` message per acquisition (the
``.hdr`` text) and then one message per frame whose body is the frame exactly
as a ``.mib`` file holds it (docs/format.md §12). So a recording is the frame
bodies concatenated, and the frames decode as :func:`load_mib_data` decodes
a file.

Frames are received in blocks of whole messages straight into one reused
buffer (``recv_into``), checked with the same vectorised header checks as
file reads, and written with one ``writev`` per block: memory stays at one
block (16 MB by default) whatever the acquisition size.
"""

from __future__ import annotations

import select
import socket
import warnings
from collections.abc import Iterator

import numpy as np

from ..errors import MIBFormatError, MIBWarning, where
from ..format.decode import decode_frames
from ..format.frame_header import read_header
from ..format.geometry import frame_geometry
from ..format.hdr_file import COUNTER_DEPTH, FRAMES_IN_ACQUISITION, MAX_HDR_BYTES, hdr_int, parse_hdr_text
from ..format.header_check import check_headers, first_bad_header
from ..format.mpx import PREFIX, message_length
from ..reader.frames import BLOCK_BYTES
from ..sources.source import Segment
from .control import CONTROL_PORT, DATA_PORT, connect, recv_exact, start_acquisition

#: Kernel receive buffer asked for on the data port: fewer, larger reads.
RECEIVE_BUFFER = 8 << 20


def check_arguments(frames, timeout, block_frames=None) -> None:
    """The arguments of record, stream and follow, checked before anything is connected or written
    (issue 23: ``frames=-1`` recorded nothing and reported success; ``timeout=None`` failed late)."""
    for name, value in (("frames", frames), ("block_frames", block_frames)):
        if value is None:
            continue
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`{name}` must be a positive whole number of frames or None, not {value!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float, np.floating, np.integer)):
        raise TypeError(f"`timeout` must be a number of seconds, not {timeout!r}")
    if not 0 < timeout < float("inf"):
        raise ValueError(f"`timeout` must be a positive, finite number of seconds, not {timeout!r}")


#: More frames lost in one run than this is a corrupt frame number (a jump to 1,000,000,001 would
#: otherwise list 10**9 lost numbers): 10 minutes at the detector's fastest 1,700 frames/s is 1,020,000.
MAX_LOST_RUN = 1_000_000


class Sequence:
    """Frame numbers of an acquisition: indices from the first number, lost numbers."""

    def __init__(self):
        self.first: int | None = None
        self.last: int | None = None
        self.lost: list[int] = []

    def index(self, head: bytes, name: str, frame: int, at: int) -> int:
        """Acquisition index of one frame from its header (which starts ``MQ1,``)."""
        text = head[4:24].split(b",", 1)[0]
        if not text.isdigit():
            raise MIBFormatError(f"{where(name, frame, at)}: frame number {text!r} is not a number")
        number = int(text)
        if self.first is None:
            self.first = self.last = number - 1
        if number <= self.last:
            raise MIBFormatError(f"{where(name, frame, at)}: frame number {number} does not follow {self.last}")
        if number - self.last - 1 > MAX_LOST_RUN:
            raise MIBFormatError(
                f"{where(name, frame, at)}: frame number {number} jumps {number - self.last - 1} past {self.last}: "
                "a corrupt number, not lost frames (the frames before it are kept)"
            )
        self.lost.extend(range(self.last + 1, number))
        self.last = number
        return number - self.first - 1

    def indices(self, heads: np.ndarray, name: str, frame: int, at) -> np.ndarray:
        """Acquisition index of each frame whose header is a row of ``heads``; ``at(i)``: its offset."""
        return np.array([self.index(bytes(h[:24]), name, frame + i, at(i)) for i, h in enumerate(heads)], np.int64)

    def report(self, name: str, stacklevel: int) -> None:
        """A warning listing the lost frame numbers, if any."""
        if self.lost:
            warnings.warn(
                f"{name}: {len(self.lost)} frame(s) lost (frame numbers jump): {_ranges(self.lost)}",
                MIBWarning,
                stacklevel=stacklevel,
            )

    @property
    def seen(self) -> int:
        """Frames received or lost so far (the acquisition's progress)."""
        return 0 if self.first is None else self.last - self.first


def runs(indices: np.ndarray) -> list[tuple[int, int, int]]:
    """``(start, stop, first index)`` of each run of consecutive indices."""
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    edges = [0, *breaks.tolist(), len(indices)]
    return [(a, b, int(indices[a])) for a, b in zip(edges[:-1], edges[1:])]


class Acquisition:
    """One acquisition read from the data port, in blocks of whole frame messages."""

    def __init__(self, host: str, port: int, timeout: float, frames: int | None, block_frames: int | None):
        self.name = f"Merlin data port {host}:{port}"
        self.timeout = timeout
        self.sock = connect(host, port, timeout, "data")
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        self.offset = 0  # stream bytes consumed (until the first frame)
        self.sequence = Sequence()
        self.complete = True
        self.hdr_bytes: bytes | None = None
        self.bytes = 0
        self.received = 0
        self._frames, self._block_frames = frames, block_frames

    def close(self) -> None:
        self.sock.close()

    def start(self) -> None:
        """Read the ``HDR`` message (if sent) and the first frame's header: the geometry."""
        length = message_length(self._exact(PREFIX, "a message"), self.name, self.offset - PREFIX)
        start = self._exact(min(4, length), "a message")
        if start == b"HDR,":
            if length > MAX_HDR_BYTES:
                raise MIBFormatError(
                    f"{where(self.name, None, self.offset - 4 - PREFIX)}: the HDR message length is {length} "
                    f"bytes, expected at most {MAX_HDR_BYTES}"
                )
            self.hdr_bytes = start + self._exact(length - 4, "the HDR message")
            length = message_length(self._exact(PREFIX, "the first frame"), self.name, self.offset - PREFIX)
            start = self._exact(min(4, length), "the first frame")
        self.hdr = parse_hdr_text(self.hdr_bytes.decode("latin-1")) if self.hdr_bytes else None
        at = self.offset - len(start)
        left = [length - len(start)]  # the header cannot run past its message

        def more(n: int) -> bytes:
            nonlocal start
            data, start = start[:n], start[n:]
            n = min(n - len(data), left[0])
            left[0] -= n
            return data + (self._exact(n, "the first frame") if n > 0 else b"")

        header, raw_header = read_header(more, self.name, 0, at)
        self.geometry = frame_geometry(header, hdr_int(self.hdr, COUNTER_DEPTH), self.name)
        if length != self.geometry.frame_bytes:
            raise MIBFormatError(
                f"{where(self.name, 0, at)}: the frame message holds {length} bytes, but its header "
                f"states {self.geometry.frame_bytes} ({self.geometry.header_bytes} header + pixels)"
            )
        self.expected = self._frames or hdr_int(self.hdr, FRAMES_IN_ACQUISITION) or None
        self.message_bytes = PREFIX + length
        per_block = self._block_frames or max(1, BLOCK_BYTES // self.message_bytes)
        self.buffer = np.empty(per_block * self.message_bytes, np.uint8)
        head = b"MPX," + f"{length + 1:010d},".encode() + raw_header
        self.buffer[: len(head)] = np.frombuffer(head, np.uint8)
        self.filled = len(head)
        self.first_offset = at  # stream offset of the first frame's header

    def _exact(self, n: int, what: str) -> bytes:
        try:
            data = recv_exact(self.sock, n)
        except TimeoutError:
            raise TimeoutError(
                f"{self.name}: no data within {self.timeout} s waiting for {what} (is an acquisition running?)"
            ) from None
        except EOFError as err:
            raise MIBFormatError(f"{where(self.name, None, self.offset)}: stream ended inside {what}: {err}") from None
        self.offset += n
        return data

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(indices, messages)``: acquisition indices and a ``(n, message_bytes)`` view, reused."""
        msg, view = self.message_bytes, memoryview(self.buffer)
        capacity = len(self.buffer) // msg
        while True:
            remaining = None if self.expected is None else self.expected - self.sequence.seen
            if remaining is not None and remaining <= 0:
                return
            ended = None
            limit = len(self.buffer) if remaining is None else min(len(self.buffer), remaining * msg)
            if self.filled < limit:
                try:
                    got = self.sock.recv_into(view[self.filled : limit])
                except TimeoutError:
                    got, ended = 0, "timeout"
                else:
                    ended = None if got else "closed"
                self.filled += got
            n = self.filled // msg
            idle = ended or self.filled >= limit or not select.select([self.sock], [], [], 0)[0]
            if n and (n == capacity or idle):
                messages = self.buffer[: n * msg].reshape(n, msg)
                lead = PREFIX + self.geometry.header_bytes
                good = first_bad_header(messages[:, :lead], self.geometry, PREFIX)
                good = n if good is None else good
                if good:
                    indices = self.sequence.indices(messages[:good, PREFIX:lead], self.name, self.received, self.at)
                    self.received += good
                    self.bytes += good * msg
                    yield indices, messages[:good]
                if good < n:
                    self._raise_bad_header(messages[good], self.received)
                rest = self.filled - n * msg
                self.buffer[:rest] = self.buffer[n * msg : self.filled]
                self.filled = rest
            if ended:
                self.end(ended)
                return

    def receive(self, view: memoryview) -> int:
        """Fill ``view``; bytes received, or -1 - bytes when the timeout passed first."""
        got = 0
        while got < len(view):
            try:
                n = self.sock.recv_into(view[got:])
            except (TimeoutError, BlockingIOError):  # BlockingIOError: the kernel timeout (splice_frames)
                return -1 - got
            if not n:
                return got
            got += n
        return got

    def check_block(self, heads: np.ndarray, first: int) -> None:
        """Check the headers of frames ``first...``; a bad one raises (the caller keeps the frames before it)."""
        bad = first_bad_header(heads, self.geometry, PREFIX)
        if bad is not None:
            self.keep = first + bad
            self._raise_bad_header(heads[bad], first + bad)

    def at(self, i: int) -> int:
        """Stream offset of the header of the ``i``-th frame after those received."""
        return self.first_offset + (self.received + i) * self.message_bytes

    def _raise_bad_header(self, message: np.ndarray, frame: int) -> None:
        segment = Segment(path=None, first=0, count=0, base=self.first_offset, prefix=PREFIX)
        lead = PREFIX + self.geometry.header_bytes
        check_headers(message[None, :lead], self.geometry, self.name, frame, segment, in_file=False)
        raise AssertionError("unreachable: the header failed the block check")  # pragma: no cover

    def end(self, how: str) -> None:
        """The stream stopped before the expected end: say what was kept."""
        if how == "timeout" and self.expected is None and not self.filled:
            return  # an open-ended acquisition ends when data stop coming
        self.complete = False
        problem = "closed the connection" if how == "closed" else f"sent nothing for {self.timeout} s"
        parts = [f"{self.name}: the detector {problem} after {self.received} frames"]
        if self.expected:
            parts.append(f"of {self.expected} expected")
        if self.filled:
            parts.append(f"inside frame {self.received} ({self.filled} of {self.message_bytes} bytes; dropped)")
        warnings.warn(" ".join(parts), MIBWarning, stacklevel=4)

    def report_lost(self) -> None:
        self.sequence.report(self.name, stacklevel=5)


def _ranges(numbers: list[int], limit: int = 10) -> str:
    """``5-6, 9, 12-18`` (the first ``limit`` runs)."""
    spans = runs(np.asarray(numbers))
    text = [f"{numbers[a]}" if b - a == 1 else f"{numbers[a]}-{numbers[b - 1]}" for a, b, _ in spans[:limit]]
    return ", ".join(text) + (", ..." if len(spans) > limit else "")


def stream(
    host: str = "127.0.0.1",
    data_port: int = DATA_PORT,
    *,
    control_port: int = CONTROL_PORT,
    start: bool = False,
    frames: int | None = None,
    timeout: float = 10.0,
    block_frames: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Decoded frames of one acquisition from the data port, block by block.

    Parameters
    ----------
    host, data_port, control_port
        Where the detector (or ``rsciio-mib serve``) listens.
    start : bool
        Connect to the data port, then start the acquisition over the control
        port (as :func:`record` does); otherwise take one started elsewhere.
    frames : int, optional
        Frames to take. Default: the HDR's "Frames in Acquisition" (0 there:
        until no data come for ``timeout`` seconds).
    timeout : float
        Seconds without data after which the stream ends (before the first
        frame: :class:`TimeoutError`).
    block_frames : int, optional
        At most this many frames per block (default: about 16 MB). A block
        is handed over as soon as no more data are waiting, so a slow
        acquisition is not held back.

    Yields
    ------
    (int, numpy.ndarray)
        The acquisition index of the block's first frame (from the frame
        numbers: frames lost on the way are skipped and reported in a
        :class:`MIBWarning`) and ``(n, rows, cols)`` frames in native byte
        order and file row order, decoded as :func:`load_mib_data` decodes a
        file (RAW included).
    """
    check_arguments(frames, timeout, block_frames)
    acquisition = Acquisition(host, data_port, timeout, frames, block_frames)
    try:
        if start:
            start_acquisition(host, control_port, timeout, frames)
        acquisition.start()
        lead = PREFIX + acquisition.geometry.header_bytes
        for indices, messages in acquisition.blocks():
            for a, b, first in runs(indices):
                yield first, decode_frames(messages[a:b, lead:], acquisition.geometry)
        acquisition.report_lost()
    finally:
        acquisition.close()
