"""A Merlin detector simulator: a ``.mib`` file served on the control and data ports.

What ``rsciio-mib serve`` runs. It answers ``GET``/``SET``/``CMD`` on the
control port as the Merlin software does (docs/format.md §12: the reply
echoes the request and ends with a status code, 0 ok, 1 busy, 2 not
recognised, 3 out of range) and, on ``STARTACQUISITION`` (or on each data
connection with ``start_on_connect``), sends the file's ``.hdr`` as the
``HDR`` message and then its frames, byte for byte, one ``MPX`` message each.
Frames go out with ``sendfile`` straight from the page cache. Settings other
than the frame count, frames per trigger and the trigger source are stored
and reported back, not applied to the served pixels.

Every wait inside checks a stop flag at least every 0.2 s, so :meth:`close`
ends all threads promptly.
"""

from __future__ import annotations

import os
import re
import select
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import MIBFormatError
from ..format.control import MAX_MESSAGE_BYTES, parse_request, reply_text
from ..format.hdr_file import FRAMES_IN_ACQUISITION, MAX_HDR_BYTES, hdr_get, hdr_int
from ..format.mpx import PREFIX, frame_prefix, message_length, mpx_message
from ..reader.properties import MIBProperties
from ..sources.source import pread

#: ``Trigger Start``/``Trigger Stop`` texts of the ``.hdr`` and their control-port codes (§12).
TRIGGERS = {
    "internal": 0,
    "rising edge": 1,
    "falling edge": 2,
    "rising edge lvds": 3,
    "falling edge lvds": 4,
    "soft trigger": 5,
}
SOFT_TRIGGER = 5
_TICK = 0.2  # seconds between looks at the stop flag
_MORE = getattr(socket, "MSG_MORE", 0)


def _whole(low: int, high: int | None = None):
    def check(text: str) -> bool:
        return text.strip().isdigit() and int(text) >= low and (high is None or int(text) <= high)

    return check


def _positive_number(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


#: Settable parameters and what counts as in range (anything else: status 3).
SETTABLE = {
    "NUMFRAMESTOACQUIRE": _whole(0),
    "NUMFRAMESPERTRIGGER": _whole(1),
    "COUNTERDEPTH": lambda v: v.strip() in ("1", "6", "12", "24"),
    "ACQUISITIONTIME": _positive_number,
    "ACQUISITIONPERIOD": _positive_number,
    "CONTINUOUSRW": _whole(0, 1),
    "FILEFORMAT": _whole(0, 2),
    "TRIGGERSTART": _whole(0, 5),
    "TRIGGERSTOP": _whole(0, 5),
    "ENABLECOUNTER1": _whole(0, 2),
    "COLOURMODE": _whole(0, 1),
    "CHARGESUMMING": _whole(0, 1),
    "GAIN": _whole(0, 3),
    "FILEENABLE": _whole(0, 1),
    "RUNHEADLESS": _whole(0, 1),
    "USETIMESTAMPING": _whole(0, 1),
    "IMAGESPERFILE": _whole(0),
    **{f"THRESHOLD{i}": (lambda v: _positive_number(v) or v.strip() == "0") for i in range(8)},
}
READ_ONLY = ("DETECTORSTATUS", "SOFTWAREVERSION", "IMAGEX", "IMAGEY")
COMMANDS = ("STARTACQUISITION", "STOPACQUISITION", "SOFTTRIGGER", "ABORT", "RESET")


class MerlinSimulator:
    """Serve a ``.mib`` file as a Merlin detector would.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.mib`` file (or MPX capture) to serve, with its ``.hdr`` if any.
    host : str
        Address to bind (loopback unless told otherwise).
    data_port, control_port : int
        Ports to listen on; 0 lets the system choose (see :attr:`ports`).
    fps : float, optional
        Frames per second to pace the frames at; default as fast as the
        client takes them.
    repeat : int
        Serve the file's frames this many times per acquisition (frame
        numbers continue), for long acquisitions from a short file.
    start_on_connect : bool
        Start an acquisition on every new data connection.
    drop_frames : iterable of int
        Acquisition indices not sent (their frame numbers are skipped), to
        rehearse lost frames.
    close_after : int, optional
        Close the data connection after this many bytes of an acquisition
        (mid-frame if it falls there), to rehearse a broken link.
    log : callable, optional
        Called with one line of text per event (connections, acquisitions).
    """

    def __init__(
        self,
        path,
        host: str = "127.0.0.1",
        data_port: int = 6342,
        control_port: int = 6341,
        *,
        fps: float | None = None,
        repeat: int = 1,
        start_on_connect: bool = False,
        drop_frames=(),
        close_after: int | None = None,
        log: Callable[[str], None] | None = None,
    ):
        if repeat < 1:
            raise ValueError(f"`repeat` is {repeat}; it must be 1 or more")
        if fps is not None and not fps > 0:
            raise ValueError(f"`fps` is {fps}; it must be positive")
        prop = MIBProperties.from_path(path)
        if len(prop.segments) != 1:
            raise ValueError("the simulator serves one file")
        self.path = str(path)
        self.geometry = prop.geometry
        self.frames = prop.number_of_frames_in_file
        self.segment = prop.segments[0]
        self.hdr_bytes = _hdr_bytes(prop)
        self.hdr_frames = hdr_int(prop.hdr, FRAMES_IN_ACQUISITION)
        self.first_number = prop.header.sequence
        self.host, self._ports = host, (control_port, data_port)
        self.fps, self.start_on_connect = fps, start_on_connect
        self.drop_frames, self.close_after = frozenset(drop_frames), close_after
        self.log = log or (lambda text: None)
        self.parameters = _initial_parameters(prop, self.frames * repeat)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._stop = threading.Event()
        self._trigger = threading.Semaphore(0)
        self._acquiring = False
        self._data_client: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self.acquisitions = 0

    # --- life cycle -----------------------------------------------------------

    def start(self) -> MerlinSimulator:
        """Listen on both ports and answer in background threads."""
        self._listeners = [self._listen(port) for port in self._ports]
        self._spawn(self._accept, self._listeners[0], self._control_client)
        self._spawn(self._accept, self._listeners[1], self._data_connected)
        return self

    def __enter__(self) -> MerlinSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def ports(self) -> tuple[int, int]:
        """``(control_port, data_port)`` actually listened on."""
        return tuple(s.getsockname()[1] for s in self._listeners)

    def close(self) -> None:
        """Stop sending, close every connection, end the threads (within about a second)."""
        self._closing.set()
        self._stop.set()
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            _close(s)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2 * _TICK + 1)

    def _listen(self, port: int) -> socket.socket:
        s = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, port))
        s.listen(4)
        s.settimeout(_TICK)
        self._sockets.append(s)
        return s

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket, handle) -> None:
        while not self._closing.is_set():
            try:
                client, address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            with self._lock:
                self._sockets.append(client)
            handle(client, address)

    # --- control port -----------------------------------------------------------

    def _control_client(self, client: socket.socket, address) -> None:
        self.log(f"control connection from {address[0]}:{address[1]}")
        client.settimeout(_TICK)
        self._spawn(self._control_loop, client)

    def _control_loop(self, client: socket.socket) -> None:
        try:
            while not self._closing.is_set():
                prefix = self._receive(client, PREFIX)
                if prefix is None:
                    return
                body = self._receive(client, message_length(prefix, "control request", 0, MAX_MESSAGE_BYTES))
                if body is None:
                    return
                client.sendall(mpx_message(self.answer(body.decode("latin-1")).encode("latin-1")))
        except (OSError, MIBFormatError):
            pass  # a client that sends garbage or goes away is dropped
        finally:
            _close(client)

    def _receive(self, client: socket.socket, n: int) -> bytes | None:
        data = bytearray()
        while len(data) < n:
            if self._closing.is_set():
                return None
            try:
                chunk = client.recv(n - len(data))
            except TimeoutError:
                continue
            if not chunk:
                return None
            data += chunk
        return bytes(data)

    def answer(self, request: str) -> str:
        """The reply to one control request (what the control port sends back)."""
        kind, name, value = parse_request(request)
        if kind == "GET":
            with self._lock:
                known = name in self.parameters or name in READ_ONLY
                current = self._get(name) if known else None
            return reply_text(kind, name, 0 if known else 2, current)
        if kind == "SET":
            return reply_text(kind, name, self._set(name, value))
        if kind == "CMD":
            return reply_text(kind, name, self._command(name))
        return f"{request},2"

    def _get(self, name: str) -> str:
        if name == "DETECTORSTATUS":
            return "1" if self._acquiring else "0"
        if name == "IMAGEX":
            return str(self.geometry.shape[1])
        if name == "IMAGEY":
            return str(self.geometry.shape[0])
        return self.parameters[name]

    def _set(self, name: str, value: str) -> int:
        if name in READ_ONLY or (name not in SETTABLE and name not in self.parameters):
            return 2
        with self._lock:
            if self._acquiring:
                return 1
            if name in SETTABLE and not SETTABLE[name](value):
                return 3
            self.parameters[name] = value.strip()
        return 0

    def _command(self, name: str) -> int:
        if name not in COMMANDS:
            return 2
        if name in ("STOPACQUISITION", "ABORT"):
            self._stop.set()
            return 0
        if name == "SOFTTRIGGER":
            self._trigger.release()
            return 0
        if name == "RESET":
            return 1 if self._acquiring else 0
        with self._lock:
            if self._acquiring:
                return 1
            self._acquiring = True
            self._stop.clear()
            self._trigger = threading.Semaphore(0)
        self._spawn(self._acquire)
        return 0

    # --- data port -----------------------------------------------------------------

    def _data_connected(self, client: socket.socket, address) -> None:
        self.log(f"data connection from {address[0]}:{address[1]}")
        with self._lock:
            old, self._data_client = self._data_client, client
        if old is not None:
            _close(old)
        if self.start_on_connect:
            self._command("STARTACQUISITION")

    def _acquire(self) -> None:
        """Send one acquisition to the data connection (waiting up to 10 s for one)."""
        began, sent_frames, sent_bytes = time.monotonic(), 0, 0
        try:
            client = None
            for _ in range(int(10 / 0.05)):
                with self._lock:
                    client = self._data_client
                if (client is not None and _alive(client)) or self._stop.is_set():
                    break
                client = None
                time.sleep(0.05)
            if client is None:
                self.log("acquisition started with no data connection: nothing sent")
                return
            with self._lock:
                params = dict(self.parameters)
            total = int(params["NUMFRAMESTOACQUIRE"])  # 0: until STOPACQUISITION
            per_trigger = int(params["NUMFRAMESPERTRIGGER"])
            soft = int(params["TRIGGERSTART"]) == SOFT_TRIGGER
            link = _Link(client, self.close_after)
            if self.hdr_bytes is not None:
                link.send(mpx_message(_hdr_with_frames(self.hdr_bytes, self.hdr_frames, total)))
            fd = os.open(self.segment.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            try:
                k = 0
                while (total == 0 or k < total) and not self._stop.is_set():
                    if soft and k % per_trigger == 0 and not self._wait_trigger():
                        break
                    if self.fps:
                        delay = began + k / self.fps - time.monotonic()
                        if delay > 0 and self._stop.wait(delay):
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
            with self._lock:
                self._acquiring = False
                self.acquisitions += 1
            seconds = time.monotonic() - began
            self.log(
                f"acquisition {self.acquisitions}: sent {sent_frames} frames, {sent_bytes / 1e6:.1f} MB "
                f"in {seconds:.2f} s ({sent_bytes / 1e6 / max(seconds, 1e-9):.0f} MB/s)"
            )

    def _wait_trigger(self) -> bool:
        while not self._stop.is_set():
            if self._trigger.acquire(timeout=_TICK):
                return True
        return False

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
    """The data connection of one acquisition, cut after ``close_after`` bytes if asked."""

    def __init__(self, sock: socket.socket, close_after: int | None):
        self.sock, self.close_after, self.sent = sock, close_after, 0
        sock.settimeout(None)

    def _room(self, n: int) -> int:
        if self.close_after is None:
            return n
        return max(0, min(n, self.close_after - self.sent))

    def _cut(self) -> None:
        _close(self.sock)
        raise _LinkClosed(f"data connection closed after {self.sent} bytes, as asked (close_after)", self.sent)

    def send(self, data: bytes, more: bool = False) -> None:
        room = self._room(len(data))
        self.sock.sendall(data[:room], _MORE if more and room == len(data) else 0)
        self.sent += room
        if room < len(data):
            self._cut()

    def sendfile(self, fd: int, offset: int, count: int) -> None:
        room = self._room(count)
        done = 0
        while done < room:
            if hasattr(os, "sendfile"):
                n = os.sendfile(self.sock.fileno(), fd, offset + done, room - done)
            else:  # pragma: no cover (Windows)
                n = self.sock.send(pread(fd, min(room - done, 1 << 20), offset + done))
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


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


def _hdr_bytes(prop: MIBProperties) -> bytes | None:
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


def _initial_parameters(prop: MIBProperties, frames: int) -> dict[str, str]:
    """Control-port parameters as the served file's headers state them."""
    hdr, header = prop.hdr, prop.header

    def trigger(key: str) -> str:
        text = (hdr_get(hdr, key) or "internal").lower()
        return str(TRIGGERS.get(text, 0))

    exposure = f"{header.exposure_ms:g}"
    thresholds = list(header.thresholds) + [0.0] * 8
    counters = (hdr_get(hdr, "Active Counters") or "").lower()
    params = {
        "NUMFRAMESTOACQUIRE": str(frames),
        "NUMFRAMESPERTRIGGER": str(hdr_int(hdr, "Frames per Trigger") or 1),
        "COUNTERDEPTH": str(prop.counter_depth or hdr_int(hdr, "Counter Depth") or 12),
        "ACQUISITIONTIME": exposure,
        "ACQUISITIONPERIOD": exposure,
        "CONTINUOUSRW": "0",
        "FILEFORMAT": "2" if header.raw else "0",
        "TRIGGERSTART": trigger("Trigger Start"),
        "TRIGGERSTOP": trigger("Trigger Stop"),
        "ENABLECOUNTER1": "2" if "alternating" in counters else "1" if "counter 1" in counters else "0",
        "COLOURMODE": str(header.colour_mode),
        "CHARGESUMMING": "0",
        "GAIN": str(header.gain_mode),
        "FILEENABLE": "0",
        "RUNHEADLESS": "0",
        "USETIMESTAMPING": "1" if header.utc_timestamp else "0",
        "IMAGESPERFILE": "0",
        "SOFTWAREVERSION": hdr_get(hdr, "Software Version") or "rsciio-mib serve",
        **{f"THRESHOLD{i}": f"{t:g}" for i, t in enumerate(thresholds[:8])},
    }
    for key, name in (("ScanX", "SCANX"), ("ScanY", "SCANY")):
        if hdr_int(hdr, key):
            params[name] = str(hdr_int(hdr, key))
    return params


def describe(simulator: MerlinSimulator) -> str:
    """One line: what is served where."""
    g = simulator.geometry
    control, data = simulator.ports
    return (
        f"serving {Path(simulator.path).name}: {simulator.frames} frames of {g.shape[1]}x{g.shape[0]} "
        f"({g.frame_bytes} bytes each) on {simulator.host}, control port {control}, data port {data}"
    )
