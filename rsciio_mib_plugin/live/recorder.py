"""Recording an acquisition from the data port into ``.mib`` and ``.hdr`` files."""

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
from pathlib import Path

import numpy as np

from .._progress import progress_bar
from ..errors import MIBWarning
from ..format.mpx import PREFIX
from ..reader.side_file import find_hdr
from ..sources.atomic import check_writable, create_new, refuse_existing, replacing
from .acquisition import Acquisition, check_arguments
from .control import CONTROL_PORT, DATA_PORT, start_acquisition

#: Frames are moved socket -> pipe -> file by ``splice`` where the system has it (Linux).
SPLICE = hasattr(os, "splice")
#: ``writev`` takes at most this many pieces per call (POSIX IOV_MAX).
IOV_MAX = 1024


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
    transfer: str = "auto",
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
    transfer : {"auto", "splice", "copy"}
        How frames reach the file: ``splice`` moves the pixels socket -> pipe
        -> file inside the kernel (Linux); ``copy`` receives blocks into one
        buffer and writes them; ``auto`` splices where the system can.
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
    check_arguments(frames, timeout)
    path = Path(filename)
    hdr_path = path.with_suffix(".hdr")
    if transfer not in ("auto", "splice", "copy"):
        raise ValueError(f"`transfer` must be 'auto', 'splice' or 'copy', not {transfer!r}")
    if transfer == "splice" and not SPLICE:
        raise ValueError("`transfer`='splice' needs os.splice (Linux); use 'copy' or 'auto'")
    splice = SPLICE if transfer == "auto" else transfer == "splice"
    check_writable(path)  # before the acquisition starts: a typo in the folder would expose the sample for nothing
    if not overwrite:
        for p in (path, hdr_path):
            if p.exists():
                refuse_existing(p)
    acquisition = Acquisition(host, data_port, timeout, frames, None)
    fd = None
    bar = None
    try:
        if start:
            start_acquisition(host, control_port, timeout, frames)
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

        if splice:
            splice_frames(acquisition, fd, progress if bar is not None else None)
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


def splice_frames(acq: Acquisition, fd: int, progress=None) -> None:
    """Write every frame's body to ``fd``, the pixels moved by ``splice`` (Linux).

    Each frame's prefix and header are received into Python and checked
    (prefix and ``MQ1,`` at once, the whole header with its block); the
    header and then the pixels go into a pipe (the pixels socket -> pipe
    inside the kernel, without a copy), and a second thread splices the
    pipe into the file, so receiving and writing overlap. If the stream
    ends inside a frame or a header is bad, the file is cut back to the
    complete frames before it.
    """
    geometry, msg = acq.geometry, acq.message_bytes
    lead = PREFIX + geometry.header_bytes
    per_block = max(1, len(acq.buffer) // msg)
    heads = np.empty((per_block, lead), np.uint8)
    heads[0] = acq.buffer[:lead]  # frame 0's, from start()
    expected_prefix = bytes(acq.buffer[:PREFIX])
    read, write = os.pipe()
    with contextlib.suppress(OSError, AttributeError):
        import fcntl  # only where splice is: Linux

        fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 1 << 20)
    drain = _Drain(read, fd)
    # A blocking socket with a kernel receive timeout for the headers' recv_into (a timeout shows
    # as BlockingIOError); the pixels are spliced only once they are waiting (_splice).
    acq.sock.settimeout(None)
    seconds = max(acq.timeout, 0.001)
    acq.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", int(seconds), int(seconds % 1 * 1e6)))
    written, block_start, pending, ended, acq.keep = 0, 0, 0, None, None
    try:
        while acq.expected is None or acq.sequence.seen < acq.expected:
            row = written - block_start
            got = lead if written == 0 else acq.receive(memoryview(heads[row]))
            if got < lead:
                ended, acq.filled = ("closed", got) if got >= 0 else ("timeout", -1 - got)
                break
            head = heads[row].tobytes()
            if head[:PREFIX] != expected_prefix or head[PREFIX : PREFIX + 4] != b"MQ1,":
                acq.check_block(heads[: row + 1], block_start)
            acq.sequence.index(head[PREFIX : PREFIX + 24], acq.name, written, acq.at(0))
            _write_all(write, memoryview(head)[PREFIX:])
            moved, ended = _splice(acq.sock, write, geometry.payload_bytes, seconds)
            if ended:
                acq.filled = lead + moved
                break
            written += 1
            pending += 1
            acq.received, acq.bytes = written, acq.bytes + msg
            if written - block_start == per_block:
                acq.check_block(heads, block_start)
                block_start = written
                if progress is not None:
                    progress(pending)
                    pending = 0
        if written > block_start:
            acq.check_block(heads[: written - block_start], block_start)
    except BrokenPipeError:
        pass  # the drain stopped on an error of its own: raised below
    finally:
        os.close(write)
        drain.join()
        keep = written if acq.keep is None and ended else acq.keep
        if keep is not None:
            os.ftruncate(fd, geometry.offset(keep))
    drain.check()
    if progress is not None and pending:
        progress(pending)
    if ended:
        acq.end(ended)


def _splice(sock, pipe: int, count: int, timeout: float) -> tuple[int, str | None]:
    """Move ``count`` bytes from the socket into the pipe; ``(moved, why it ended early)``.

    Each splice starts once bytes are waiting (``poll``): a splice waiting for
    the socket holds the pipe's lock, so the frames already in the pipe would
    not reach the file while the stream stalls.
    """
    moved, fd = 0, sock.fileno()
    waiting = select.poll()
    waiting.register(fd, select.POLLIN)
    while moved < count:
        if not waiting.poll(timeout * 1000):
            return moved, "timeout"
        try:
            n = os.splice(fd, pipe, count - moved)
        except BlockingIOError:
            return moved, "timeout"
        if not n:
            return moved, "closed"
        moved += n
    return moved, None


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


def _reserve(fd: int, nbytes: int) -> None:
    """Reserve disk blocks for a recording without changing the file's size.

    Linux ``fallocate`` with ``FALLOC_FL_KEEP_SIZE``: writing into reserved
    blocks ran at 4.4-6.1 GB/s where a file growing write by write took
    0.4-1.2 GB/s (ext4 on this project's VMs), and the size still grows only
    with what is written, so :func:`follow` sees complete frames only.
    Elsewhere, or when it fails, the writes allocate as they go. At most half
    the free space is reserved: a stream announcing 10**12 frames (a corrupt
    HDR) would otherwise fill the disk for every other program while it lasts.
    """
    try:
        free = os.fstatvfs(fd)
        fallocate = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError, TypeError):  # no statvfs, no C library by that name (Windows)
        return
    nbytes = min(nbytes, free.f_bavail * free.f_frsize // 2)
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
