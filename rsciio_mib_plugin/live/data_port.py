"""The simulator's data port: acquisitions of the served file sent to the connected client.

Frames go out with ``sendfile`` straight from the page cache; repeated frames get frame numbers
that go on from the last one (docs/format.md §2.1), in headers of the same length.
"""

from __future__ import annotations

import os
import re
import select
import socket
import threading
import time
from collections.abc import Callable

from ..errors import MIBFormatError
from ..format.hdr_file import FRAMES_IN_ACQUISITION, MAX_HDR_BYTES, hdr_int
from ..format.mpx import frame_prefix, mpx_message
from ..reader.acquisition import Acquisition
from ..sources.source import pread
from .control_port import SOFT_TRIGGER
from .detector import TICK, Detector, close_socket

_MORE = getattr(socket, "MSG_MORE", 0)


class DataPort:
    """Sends acquisitions of one ``.mib`` file (the options are :class:`.MerlinSimulator`'s)."""

    def __init__(
        self,
        prop: Acquisition,
        detector: Detector,
        *,
        fps: float | None = None,
        drop_frames=(),
        close_after: int | None = None,
        log: Callable[[str], None] = lambda text: None,
    ):
        self.geometry = prop.geometry
        self.frames = prop.number_of_frames_in_file
        self.segment = prop.segments[0]
        self.hdr_bytes = _hdr_bytes(prop)
        self.hdr_frames = hdr_int(prop.hdr, FRAMES_IN_ACQUISITION)
        self.first_number = prop.header.sequence
        self.detector, self.fps, self.log = detector, fps, log
        self.drop_frames, self.close_after = frozenset(drop_frames), close_after
        self.client: socket.socket | None = None

    def connected(self, client: socket.socket) -> socket.socket | None:
        """A new data connection replaces the previous one (returned, for its owner to close)."""
        with self.detector.lock:
            old, self.client = self.client, client
        return old

    def acquire(self, parameters: dict[str, str]) -> None:
        """Send one acquisition to the data connection (waiting up to 10 s for one)."""
        detector = self.detector
        began, sent_frames, sent_bytes = time.monotonic(), 0, 0
        try:
            client = None
            for _ in range(int(10 / 0.05)):
                with detector.lock:
                    client = self.client
                if (client is not None and _alive(client)) or detector.stop.is_set():
                    break
                client = None
                time.sleep(0.05)
            if client is None:
                self.log("acquisition started with no data connection: nothing sent")
                return
            total = int(parameters["NUMFRAMESTOACQUIRE"])  # 0: until STOPACQUISITION
            per_trigger = int(parameters["NUMFRAMESPERTRIGGER"])
            soft = int(parameters["TRIGGERSTART"]) == SOFT_TRIGGER
            link = _Link(client, self.close_after, detector.stop)
            if self.hdr_bytes is not None:
                link.send(mpx_message(_hdr_with_frames(self.hdr_bytes, self.hdr_frames, total)))
            fd = os.open(self.segment.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            try:
                k = 0
                while (total == 0 or k < total) and not detector.stop.is_set():
                    if soft and k % per_trigger == 0 and not detector.wait_trigger():
                        break
                    if self.fps:
                        delay = began + k / self.fps - time.monotonic()
                        if delay > 0 and detector.stop.wait(delay):
                            break
                    if k not in self.drop_frames:
                        self._send_frame(link, fd, k)
                        sent_frames += 1
                    k += 1
            finally:
                os.close(fd)
            sent_bytes = link.sent
        except _LinkClosed as err:
            self.log(str(err))
            sent_bytes = err.sent
        except OSError as err:
            self.log(f"data connection lost: {err}")
        finally:
            number = detector.end()
            seconds = time.monotonic() - began
            self.log(
                f"acquisition {number}: sent {sent_frames} frames, {sent_bytes / 1e6:.1f} MB "
                f"in {seconds:.2f} s ({sent_bytes / 1e6 / max(seconds, 1e-9):.0f} MB/s)"
            )

    def _send_frame(self, link: _Link, fd: int, k: int) -> None:
        geometry, segment = self.geometry, self.segment
        i = k % self.frames
        offset = geometry.offset(i, segment.base, segment.prefix)
        prefix = frame_prefix(geometry.frame_bytes)
        if k < self.frames:
            link.send(prefix, more=True)
            link.sendfile(fd, offset, geometry.frame_bytes)
            return
        # A repeat: the frame number goes on from the last one sent (§2.1).
        header = pread(fd, geometry.header_bytes, offset)
        link.send(prefix + _renumber(header, self.first_number + k), more=True)
        link.sendfile(fd, offset + geometry.header_bytes, geometry.payload_bytes)


class _LinkClosed(Exception):
    def __init__(self, message: str, sent: int):
        super().__init__(message)
        self.sent = sent


class _Link:
    """The data connection of one acquisition, cut after ``close_after`` bytes if asked.

    The socket does not block: a client that stops reading holds a send only
    until ``stop`` is set (STOPACQUISITION, the simulator closing), looked at
    every :data:`.detector.TICK` seconds.
    """

    def __init__(self, sock: socket.socket, close_after: int | None, stop: threading.Event):
        self.sock, self.close_after, self.stop, self.sent = sock, close_after, stop, 0
        sock.setblocking(False)

    def _room(self, n: int) -> int:
        if self.close_after is None:
            return n
        return max(0, min(n, self.close_after - self.sent))

    def _cut(self) -> None:
        close_socket(self.sock)
        raise _LinkClosed(f"data connection closed after {self.sent} bytes, as asked (close_after)", self.sent)

    def _wait(self, done: int) -> None:
        """Wait until the client takes more bytes, or the acquisition is stopped."""
        while not select.select([], [self.sock], [], TICK)[1]:
            if self.stop.is_set():
                raise _LinkClosed(
                    f"acquisition stopped while the client was not reading ({self.sent + done} bytes sent)",
                    self.sent + done,
                )

    def send(self, data: bytes, more: bool = False) -> None:
        room = self._room(len(data))
        view, done = memoryview(data)[:room], 0
        flags = _MORE if more and room == len(data) else 0
        while done < room:
            try:
                done += self.sock.send(view[done:], flags)
            except BlockingIOError:
                self._wait(done)
        self.sent += room
        if room < len(data):
            self._cut()

    def sendfile(self, fd: int, offset: int, count: int) -> None:
        room = self._room(count)
        done = 0
        while done < room:
            try:
                if hasattr(os, "sendfile"):
                    n = os.sendfile(self.sock.fileno(), fd, offset + done, room - done)
                else:  # pragma: no cover (Windows)
                    n = self.sock.send(pread(fd, min(room - done, 1 << 20), offset + done))
            except BlockingIOError:
                self._wait(done)
                continue
            if n == 0:
                raise OSError(f"{self.sock}: could not send from the file")
            done += n
        self.sent += room
        if room < count:
            self._cut()


def _alive(s: socket.socket) -> bool:
    """False when the peer has closed the connection (the next send would fail)."""
    try:
        readable = select.select([s], [], [], 0)[0]
        return not readable or s.recv(1, socket.MSG_PEEK) != b""
    except (OSError, ValueError):
        return False


def _hdr_bytes(prop: Acquisition) -> bytes | None:
    """The acquisition header as the data port sends it: the ``.hdr`` file's bytes."""
    if prop.hdr_path is None:
        return None
    if prop.mpx_capture:  # a capture's in-band HDR message
        text = "HDR,\t\r\n" + "".join(f"{k}:\t{v}\r\n" for k, v in prop.hdr.items()) + "End\t"
        return text.encode("latin-1")
    with open(prop.hdr_path, "rb") as f:
        return f.read(MAX_HDR_BYTES)


def _hdr_with_frames(hdr: bytes, stated: int | None, frames: int) -> bytes:
    """The ``.hdr`` with "Frames in Acquisition" set to ``frames``, its length kept when padded."""
    if stated == frames:
        return hdr
    pattern = re.compile(rb"(Frames in Acquisition[^\t\r\n]*\t)([^\r\n]*)")
    changed = pattern.sub(lambda m: m.group(1) + str(frames).encode(), hdr, count=1)
    padding = len(changed) - len(hdr)
    if padding > 0 and changed.endswith(b" " * padding):
        changed = changed[:-padding]
    elif padding < 0:
        changed += b" " * -padding
    return changed


def _renumber(header: bytes, number: int) -> bytes:
    """A frame header with another frame number, its length kept (the text ends in padding)."""
    magic, old, rest = header.split(b",", 2)
    new = str(number).zfill(len(old)).encode()
    changed = magic + b"," + new + b"," + rest
    extra = len(changed) - len(header)
    if extra > 0:
        if changed[-extra:].strip(b"\x00 "):
            raise MIBFormatError(f"frame number {number} does not fit the frame header")
        changed = changed[:-extra]
    return changed
