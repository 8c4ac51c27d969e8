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

import socket
import threading
from collections.abc import Callable
from pathlib import Path

from ..errors import MIBFormatError
from ..format.control import MAX_MESSAGE_BYTES
from ..format.mpx import PREFIX, message_length, mpx_message
from ..reader.acquisition import open_acquisition
from .control_port import ControlPort, initial_parameters
from .data_port import DataPort
from .detector import TICK, Detector, close_socket

#: Control connections open at once; more are closed at once (a flood would hold a thread each).
MAX_CONTROL_CLIENTS = 16


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
        prop = open_acquisition(path)
        if len(prop.segments) != 1:
            raise ValueError("the simulator serves one file")
        self.path = str(path)
        self.geometry = prop.geometry
        self.frames = prop.number_of_frames_in_file
        self.host, self._ports = host, (control_port, data_port)
        self.start_on_connect = start_on_connect
        self.log = log or (lambda text: None)
        self.detector = Detector()
        self.control = ControlPort(
            self.detector, initial_parameters(prop, self.frames * repeat), self.geometry.shape, self._start_acquisition
        )
        self.data = DataPort(
            prop, self.detector, fps=fps, drop_frames=drop_frames, close_after=close_after, log=self.log
        )
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._control_clients = 0

    @property
    def parameters(self) -> dict[str, str]:
        """The control port's settings, as text."""
        return self.control.parameters

    @property
    def acquisitions(self) -> int:
        """Acquisitions ended so far."""
        return self.detector.acquisitions

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
        self.detector.closing.set()
        self.detector.stop.set()
        with self.detector.lock:
            sockets = list(self._sockets)
        for s in sockets:
            close_socket(s)
        with self.detector.lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2 * TICK + 1)

    def _listen(self, port: int) -> socket.socket:
        s = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, port))
        s.listen(4)
        s.settimeout(TICK)
        self._sockets.append(s)
        return s

    def _spawn(self, target, *args) -> None:
        """Run ``target(*args)`` in a thread that is forgotten once it ends."""

        def run():
            try:
                target(*args)
            finally:
                with self.detector.lock:
                    self._threads.remove(thread)

        thread = threading.Thread(target=run, daemon=True)
        with self.detector.lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket, handle) -> None:
        while not self.detector.closing.is_set():
            try:
                client, address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            with self.detector.lock:
                self._sockets.append(client)
            handle(client, address)

    def _forget(self, s: socket.socket) -> None:
        """Close a connection and drop it from those :meth:`close` ends."""
        close_socket(s)
        with self.detector.lock:
            if s in self._sockets:
                self._sockets.remove(s)

    def _control_client(self, client: socket.socket, address) -> None:
        with self.detector.lock:
            clients = self._control_clients
        if clients >= MAX_CONTROL_CLIENTS:
            self.log(f"control connection from {address[0]}:{address[1]} refused: {clients} already open")
            self._forget(client)
            return
        self.log(f"control connection from {address[0]}:{address[1]}")
        client.settimeout(TICK)
        self._spawn(self._control_loop, client)

    def _control_loop(self, client: socket.socket) -> None:
        with self.detector.lock:
            self._control_clients += 1
        try:
            while not self.detector.closing.is_set():
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
            self._forget(client)
            with self.detector.lock:
                self._control_clients -= 1

    def _receive(self, client: socket.socket, n: int) -> bytes | None:
        data = bytearray()
        while len(data) < n:
            if self.detector.closing.is_set():
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
        return self.control.answer(request)

    def _start_acquisition(self) -> None:
        with self.detector.lock:
            parameters = dict(self.control.parameters)
        self._spawn(self.data.acquire, parameters)

    # --- data port -----------------------------------------------------------------

    def _data_connected(self, client: socket.socket, address) -> None:
        self.log(f"data connection from {address[0]}:{address[1]}")
        old = self.data.connected(client)
        if old is not None:
            self._forget(old)
        if self.start_on_connect:
            self.control.command("STARTACQUISITION")


def describe(simulator: MerlinSimulator) -> str:
    """One line: what is served where."""
    g = simulator.geometry
    control, data = simulator.ports
    return (
        f"serving {Path(simulator.path).name}: {simulator.frames} frames of {g.shape[1]}x{g.shape[0]} "
        f"({g.frame_bytes} bytes each) on {simulator.host}, control port {control}, data port {data}"
    )
