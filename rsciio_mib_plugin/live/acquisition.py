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

import contextlib
import ctypes
import os
import select
import socket
import struct
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .._progress import progress_bar
from ..errors import MerlinCommandError, MIBFormatError, MIBWarning, where
from ..format.control import MAX_MESSAGE_BYTES, STATUS, parse_reply, request_text
from ..format.decode import decode_frames
from ..format.frame_header import read_header, reading_from
from ..format.geometry import Geometry, frame_geometry
from ..format.hdr_file import COUNTER_DEPTH, FRAMES_IN_ACQUISITION, MAX_HDR_BYTES, hdr_int, parse_hdr_text
from ..format.mpx import PREFIX, message_length, mpx_message
from ..reader.frames import BLOCK_BYTES, check_headers, first_bad_header
from ..reader.side_file import find_hdr, read_hdr
from ..sources.atomic import create_new, replacing
from ..sources.source import Segment, check_path, open_fd, pread, read_exact

CONTROL_PORT = 6341
DATA_PORT = 6342
#: Kernel receive buffer asked for on the data port: fewer, larger reads.
RECEIVE_BUFFER = 8 << 20
#: Frames are moved socket -> pipe -> file by ``splice`` where the system has it (Linux).
SPLICE = hasattr(os, "splice")
#: ``writev`` takes at most this many pieces per call (POSIX IOV_MAX).
IOV_MAX = 1024


# --- control port ------------------------------------------------------------


class MerlinControl:
    """Requests to the Merlin control port.

    Parameters
    ----------
    host : str
        The Merlin PC (or ``rsciio-mib serve``).
    port : int
        Its control port.
    timeout : float
        Seconds to wait for the connection and for each reply.

    Examples
    --------
    >>> with MerlinControl("127.0.0.1", port) as merlin:  # doctest: +SKIP
    ...     merlin.set("NUMFRAMESTOACQUIRE", 16384)
    ...     merlin.cmd("STARTACQUISITION")
    """

    def __init__(self, host: str = "127.0.0.1", port: int = CONTROL_PORT, timeout: float = 5.0):
        self.host, self.port, self.timeout = host, port, timeout
        self._sock: socket.socket | None = None

    def __enter__(self) -> MerlinControl:
        self._connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (a later request opens a new one)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def get(self, name: str) -> str:
        """The value of parameter ``name`` as the detector states it (text)."""
        return self._request(request_text("GET", name))

    def set(self, name: str, value) -> None:
        """Set parameter ``name`` to ``value``."""
        self._request(request_text("SET", name, value))

    def cmd(self, name: str) -> None:
        """Run command ``name`` (``STARTACQUISITION``, ``SOFTTRIGGER``, ``STOPACQUISITION`` ...)."""
        self._request(request_text("CMD", name))

    def _connect(self) -> socket.socket:
        if self._sock is None:
            self._sock = _connect(self.host, self.port, self.timeout, "control")
        return self._sock

    def _request(self, body: str) -> str:
        """Send one request; the reply's value (GET) or ``""``; a non-zero status raises."""
        sock = self._connect()
        name = f"Merlin control port {self.host}:{self.port}"
        try:
            sock.sendall(mpx_message(body.encode("ascii")))
            prefix = _recv_exact(sock, PREFIX)
            reply = _recv_exact(sock, message_length(prefix, name, 0, MAX_MESSAGE_BYTES)).decode("latin-1")
        except TimeoutError:
            self.close()
            raise TimeoutError(f"{name}: no reply to {body!r} within {self.timeout} s") from None
        except (EOFError, ConnectionError) as err:
            self.close()
            raise ConnectionError(f"{name}: connection lost waiting for the reply to {body!r} ({err})") from None
        parsed = parse_reply(reply, body)
        if parsed is None:
            raise MerlinCommandError(f"{name}: reply {reply!r} to {body!r} does not echo the request and a status code")
        code, value = parsed
        if code:
            raise MerlinCommandError(
                f"{name}: {body!r} failed with status {code} ({STATUS.get(code, 'unknown code')})", code=code
            )
        return value


def _connect(host: str, port: int, timeout: float, what: str) -> socket.socket:
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        raise TimeoutError(f"Merlin {what} port {host}:{port}: no connection within {timeout} s") from None
    except OSError as err:
        raise ConnectionError(f"Merlin {what} port {host}:{port}: cannot connect ({err.strerror or err})") from None


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray(n)
    view, got = memoryview(data), 0
    while got < n:
        k = sock.recv_into(view[got:])
        if not k:
            raise EOFError(f"connection closed after {got} of {n} bytes")
        got += k
    return bytes(data)


# --- one acquisition on the data port ---------------------------------------------


class _Sequence:
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


def _runs(indices: np.ndarray) -> list[tuple[int, int, int]]:
    """``(start, stop, first index)`` of each run of consecutive indices."""
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    edges = [0, *breaks.tolist(), len(indices)]
    return [(a, b, int(indices[a])) for a, b in zip(edges[:-1], edges[1:])]


class _Acquisition:
    """One acquisition read from the data port, in blocks of whole frame messages."""

    def __init__(self, host: str, port: int, timeout: float, frames: int | None, block_frames: int | None):
        self.name = f"Merlin data port {host}:{port}"
        self.timeout = timeout
        self.sock = _connect(host, port, timeout, "data")
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        self.offset = 0  # stream bytes consumed (until the first frame)
        self.sequence = _Sequence()
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
            data = _recv_exact(self.sock, n)
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
                    indices = self.sequence.indices(messages[:good, PREFIX:lead], self.name, self.received, self._at)
                    self.received += good
                    self.bytes += good * msg
                    yield indices, messages[:good]
                if good < n:
                    self._raise_bad_header(messages[good], self.received)
                rest = self.filled - n * msg
                self.buffer[:rest] = self.buffer[n * msg : self.filled]
                self.filled = rest
            if ended:
                self._end(ended)
                return

    def splice_to(self, fd: int, progress=None) -> None:
        """Write every frame's body to ``fd``, the pixels moved by ``splice`` (Linux).

        Each frame's prefix and header are received into Python and checked
        (prefix and ``MQ1,`` at once, the whole header with its block); the
        header and then the pixels go into a pipe (the pixels socket -> pipe
        inside the kernel, without a copy), and a second thread splices the
        pipe into the file, so receiving and writing overlap. If the stream
        ends inside a frame or a header is bad, the file is cut back to the
        complete frames before it.
        """
        geometry, msg = self.geometry, self.message_bytes
        lead = PREFIX + geometry.header_bytes
        per_block = max(1, len(self.buffer) // msg)
        heads = np.empty((per_block, lead), np.uint8)
        heads[0] = self.buffer[:lead]  # frame 0's, from start()
        expected_prefix = bytes(self.buffer[:PREFIX])
        read, write = os.pipe()
        with contextlib.suppress(OSError, AttributeError):
            import fcntl  # only where splice is: Linux

            fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 1 << 20)
        drain = _Drain(read, fd)
        # A blocking socket with a kernel receive timeout: splice waits for data inside the kernel
        # (no EAGAIN, select and retry per frame); a timeout shows as BlockingIOError.
        self.sock.settimeout(None)
        seconds = max(self.timeout, 0.001)
        self.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", int(seconds), int(seconds % 1 * 1e6))
        )
        written, block_start, pending, ended, self._keep = 0, 0, 0, None, None
        try:
            while self.expected is None or self.sequence.seen < self.expected:
                row = written - block_start
                got = lead if written == 0 else self._receive(memoryview(heads[row]))
                if got < lead:
                    ended, self.filled = ("closed", got) if got >= 0 else ("timeout", -1 - got)
                    break
                head = heads[row].tobytes()
                if head[:PREFIX] != expected_prefix or head[PREFIX : PREFIX + 4] != b"MQ1,":
                    self._check_block(heads[: row + 1], block_start)
                self.sequence.index(head[PREFIX : PREFIX + 24], self.name, written, self._at(0))
                _write_all(write, memoryview(head)[PREFIX:])
                moved, ended = self._splice(write, geometry.payload_bytes)
                if ended:
                    self.filled = lead + moved
                    break
                written += 1
                pending += 1
                self.received, self.bytes = written, self.bytes + msg
                if written - block_start == per_block:
                    self._check_block(heads, block_start)
                    block_start = written
                    if progress is not None:
                        progress(pending)
                        pending = 0
            if written > block_start:
                self._check_block(heads[: written - block_start], block_start)
        except BrokenPipeError:
            pass  # the drain stopped on an error of its own: raised below
        finally:
            os.close(write)
            drain.join()
            keep = written if self._keep is None and ended else self._keep
            if keep is not None:
                os.ftruncate(fd, keep * geometry.frame_bytes)
        drain.check()
        if progress is not None and pending:
            progress(pending)
        if ended:
            self._end(ended)

    def _receive(self, view: memoryview) -> int:
        """Fill ``view``; bytes received, or -1 - bytes when the timeout passed first."""
        got = 0
        while got < len(view):
            try:
                n = self.sock.recv_into(view[got:])
            except (TimeoutError, BlockingIOError):  # BlockingIOError: the kernel timeout (splice_to)
                return -1 - got
            if not n:
                return got
            got += n
        return got

    def _splice(self, pipe: int, count: int) -> tuple[int, str | None]:
        """Move ``count`` bytes from the socket into the pipe; ``(moved, why it ended early)``."""
        moved, sock = 0, self.sock.fileno()
        while moved < count:
            try:
                n = os.splice(sock, pipe, count - moved)
            except BlockingIOError:  # nothing within the socket's receive timeout
                return moved, "timeout"
            if not n:
                return moved, "closed"
            moved += n
        return moved, None

    def _check_block(self, heads: np.ndarray, first: int) -> None:
        """Check the headers of frames ``first...``; a bad one raises (the caller keeps the frames before it)."""
        bad = first_bad_header(heads, self.geometry, PREFIX)
        if bad is not None:
            self._keep = first + bad
            self._raise_bad_header(heads[bad], first + bad)

    def _at(self, i: int) -> int:
        """Stream offset of the header of the ``i``-th frame after those received."""
        return self.first_offset + (self.received + i) * self.message_bytes

    def _raise_bad_header(self, message: np.ndarray, frame: int) -> None:
        segment = Segment(path=None, first=0, count=0, base=self.first_offset, prefix=PREFIX)
        lead = PREFIX + self.geometry.header_bytes
        check_headers(message[None, :lead], self.geometry, self.name, frame, segment, in_file=False)
        raise AssertionError("unreachable: the header failed the block check")  # pragma: no cover

    def _end(self, how: str) -> None:
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


class _Drain(threading.Thread):
    """Splices a pipe into a file until the pipe's write end is closed (the writing half of ``splice_to``)."""

    def __init__(self, pipe: int, fd: int):
        super().__init__(daemon=True)
        self.pipe, self.fd, self.error = pipe, fd, None
        self.start()

    def run(self) -> None:
        try:
            while os.splice(self.pipe, self.fd, 1 << 20):
                pass
        except OSError as err:  # disk full, ...: the receiving side stops on EPIPE and raises this
            self.error = err
        finally:
            os.close(self.pipe)

    def check(self) -> None:
        if self.error is not None:
            raise self.error


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _ranges(numbers: list[int], limit: int = 10) -> str:
    """``5-6, 9, 12-18`` (the first ``limit`` runs)."""
    runs = _runs(np.asarray(numbers))
    text = [f"{numbers[a]}" if b - a == 1 else f"{numbers[a]}-{numbers[b - 1]}" for a, b, _ in runs[:limit]]
    return ", ".join(text) + (", ..." if len(runs) > limit else "")


def _reserve(fd: int, nbytes: int) -> None:
    """Reserve disk blocks for a recording without changing the file's size.

    Linux ``fallocate`` with ``FALLOC_FL_KEEP_SIZE``: writing into reserved
    blocks ran at 4.4-6.1 GB/s where a file growing write by write took
    0.4-1.2 GB/s (ext4 on this project's VMs), and the size still grows only
    with what is written, so :func:`follow` sees complete frames only.
    Elsewhere, or when it fails, the writes allocate as they go.
    """
    try:
        fallocate = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError, TypeError):  # no C library by that name (Windows)
        return
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fallocate(fd, 1, 0, nbytes)  # 1: FALLOC_FL_KEEP_SIZE


def _write_bodies(fd: int, messages: np.ndarray) -> None:
    """Write every message's body (its bytes after the 15-byte prefix)."""
    bodies = [memoryview(row)[PREFIX:] for row in messages]
    for i in range(0, len(bodies), IOV_MAX):
        pieces = bodies[i : i + IOV_MAX]
        while pieces:
            written = os.writev(fd, pieces) if hasattr(os, "writev") else os.write(fd, pieces[0])
            while pieces and written >= len(pieces[0]):
                written -= len(pieces[0])
                pieces.pop(0)
            if pieces and written:
                pieces[0] = pieces[0][written:]


def record(
    filename,
    host: str = "127.0.0.1",
    data_port: int = DATA_PORT,
    control_port: int = CONTROL_PORT,
    *,
    start: bool = False,
    frames: int | None = None,
    timeout: float = 10.0,
    show_progressbar: bool | None = None,
    overwrite: bool = False,
) -> dict:
    """Record one acquisition from the data port into ``filename`` and its ``.hdr``.

    The files are what the Merlin software writes to disk: the frame
    messages' bodies concatenated (``.mib``) and the ``HDR`` message's body
    (``.hdr``), so every reader reads the recording. Only complete frames are
    written; the file can be followed (:func:`follow`) while it grows.

    Parameters
    ----------
    filename : str or pathlib.Path
        The ``.mib`` to write; the ``.hdr`` goes beside it.
    host, data_port, control_port
        Where the detector (or ``rsciio-mib serve``) listens.
    start : bool
        Start the acquisition over the control port: set ``NUMFRAMESTOACQUIRE``
        (when ``frames`` is given), then ``STARTACQUISITION``. Otherwise wait
        for one started elsewhere.
    frames : int, optional
        Frames to record. Default: the ``.hdr``'s "Frames in Acquisition"
        (0 there means until the data stop for ``timeout`` seconds).
    timeout : float
        Seconds without data after which the recording ends.
    show_progressbar : bool, optional
        Frames, frames/s and MB/s on stderr; default: when stderr is a terminal.
    overwrite : bool
        Replace existing files instead of refusing.

    Returns
    -------
    dict
        ``path``, ``hdr`` (path or ``None``), ``frames`` received, ``bytes``
        received, ``seconds``, ``mb_per_s``, ``lost_frames`` (frame numbers
        missing from the stream), ``complete`` (``False`` when the stream
        stopped early; a :class:`MIBWarning` says how).

    Raises
    ------
    TimeoutError
        Nothing arrived within ``timeout`` seconds (names host and port).
    MIBFormatError
        The stream is not Merlin data (names the byte offset in the stream).
    """
    path = Path(filename)
    hdr_path = path.with_suffix(".hdr")
    if not overwrite:
        for p in (path, hdr_path):
            if p.exists():
                raise FileExistsError(f"{p} exists; pass overwrite=True (--overwrite) to replace it")
    acquisition = _Acquisition(host, data_port, timeout, frames, None)
    fd = None
    bar = None
    try:
        if start:
            _start(host, control_port, timeout, frames)
        acquisition.start()
        began = time.perf_counter()
        if acquisition.hdr_bytes is not None:
            with replacing(hdr_path, overwrite) as temp:
                temp.write_bytes(acquisition.hdr_bytes)
        else:
            old = find_hdr(path) if overwrite else None
            if old is not None:  # the previous recording's: it would describe this one wrongly
                os.unlink(old)
            warnings.warn(
                f"{acquisition.name}: no HDR message before the frames; no .hdr written"
                + (f" (the previous recording's {old} is removed)" if old is not None else ""),
                MIBWarning,
                stacklevel=2,
            )
        fd = create_new(path, overwrite)
        if acquisition.expected:
            _reserve(fd, acquisition.expected * acquisition.geometry.frame_bytes)
        bar = progress_bar(show_progressbar, acquisition.expected, "frame", "record")

        def progress(frames: int) -> None:
            bar.update(frames)
            bar.set_postfix_str(f"{acquisition.bytes / 1e6 / max(time.perf_counter() - began, 1e-9):.0f} MB/s")

        if SPLICE:
            acquisition.splice_to(fd, progress if bar is not None else None)
        else:
            for _, messages in acquisition.blocks():
                _write_bodies(fd, messages)
                if bar is not None:
                    progress(len(messages))
        acquisition.report_lost()
    finally:
        if bar is not None:
            bar.close()
        if fd is not None:
            size = os.fstat(fd).st_size  # whole frames only; frees the reserved blocks past them
            os.ftruncate(fd, size - size % acquisition.geometry.frame_bytes)
            os.close(fd)
        acquisition.close()
    seconds = time.perf_counter() - began
    return {
        "path": str(path),
        "hdr": str(hdr_path) if acquisition.hdr_bytes is not None else None,
        "frames": acquisition.received,
        "bytes": acquisition.bytes + (len(acquisition.hdr_bytes or b"") + PREFIX if acquisition.hdr_bytes else 0),
        "seconds": seconds,
        "mb_per_s": acquisition.bytes / 1e6 / max(seconds, 1e-9),
        "lost_frames": list(acquisition.sequence.lost),
        "complete": acquisition.complete,
    }


def _start(host: str, control_port: int, timeout: float, frames: int | None) -> None:
    """Set the frame count and start; while the detector is still busy (finishing the
    previous acquisition) ask again every 50 ms, for up to ``timeout`` seconds."""
    with MerlinControl(host, control_port, timeout) as control:
        for attempt in range(max(1, int(timeout / 0.05))):
            try:
                if frames:
                    control.set("NUMFRAMESTOACQUIRE", frames)
                control.cmd("STARTACQUISITION")
                return
            except MerlinCommandError as err:
                if err.code != 1 or attempt == max(1, int(timeout / 0.05)) - 1:
                    raise
                time.sleep(0.05)


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
    acquisition = _Acquisition(host, data_port, timeout, frames, block_frames)
    try:
        if start:
            _start(host, control_port, timeout, frames)
        acquisition.start()
        lead = PREFIX + acquisition.geometry.header_bytes
        for indices, messages in acquisition.blocks():
            for a, b, first in _runs(indices):
                yield first, decode_frames(messages[a:b, lead:], acquisition.geometry)
        acquisition.report_lost()
    finally:
        acquisition.close()


# --- files still being written ------------------------------------------------------


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
        sequence, done, last_growth, size = _Sequence(), 0, time.monotonic(), 0
        segment = Segment(path=name, first=0, count=0)
        while expected is None or sequence.seen < expected:
            new_size = os.fstat(fd).st_size
            if new_size < size:
                raise MIBFormatError(f"{name}: the file shrank from {size} to {new_size} bytes while followed")
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
            read_exact(fd, done * geometry.frame_bytes, block, name, done)
            heads = block[:, : geometry.header_bytes]
            check_headers(heads, geometry, name, done, segment)
            indices = sequence.indices(heads, name, done, lambda i, d=done: (d + i) * geometry.frame_bytes)
            for a, b, first in _runs(indices):
                yield first, decode_frames(block[a:b, geometry.header_bytes :], geometry)
            done += n
        sequence.report(name, stacklevel=3)
    finally:
        os.close(fd)


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
