"""The Merlin control port (6341): requests and replies (docs/format.md §12), starting an acquisition."""

from __future__ import annotations

import socket
import time

from ..errors import MerlinCommandError
from ..format.control import MAX_MESSAGE_BYTES, STATUS, parse_reply, request_text
from ..format.mpx import PREFIX, message_length, mpx_message

CONTROL_PORT = 6341
DATA_PORT = 6342


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
            self._sock = connect(self.host, self.port, self.timeout, "control")
        return self._sock

    def _request(self, body: str, deadline: float | None = None) -> str:
        """Send one request; the reply's value (GET) or ``""``; a non-zero status raises.

        The reply must be complete by ``deadline`` (``time.monotonic()``; default
        ``timeout`` seconds from now), however slowly its bytes come.
        """
        name = f"Merlin control port {self.host}:{self.port}"
        if not body.isascii():
            raise ValueError(f"{name}: {body!r} is not ASCII text, which the control port takes")
        sock = self._connect()
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        try:
            sock.settimeout(max(deadline - time.monotonic(), 1e-3))
            sock.sendall(mpx_message(body.encode("ascii")))
            prefix = recv_exact(sock, PREFIX, deadline)
            reply = recv_exact(sock, message_length(prefix, name, 0, MAX_MESSAGE_BYTES), deadline).decode("latin-1")
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


def connect(host: str, port: int, timeout: float, what: str) -> socket.socket:
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        raise TimeoutError(f"Merlin {what} port {host}:{port}: no connection within {timeout} s") from None
    except OSError as err:
        raise ConnectionError(f"Merlin {what} port {host}:{port}: cannot connect ({err.strerror or err})") from None


def recv_exact(sock: socket.socket, n: int, deadline: float | None = None) -> bytes:
    """``n`` bytes from ``sock``; with a ``deadline`` (``time.monotonic()``) all of them by then
    (TimeoutError), otherwise each read waits up to the socket's own timeout."""
    data = bytearray(n)
    view, got = memoryview(data), 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{got} of {n} bytes by the deadline")
            sock.settimeout(left)
        k = sock.recv_into(view[got:])
        if not k:
            raise EOFError(f"connection closed after {got} of {n} bytes")
        got += k
    return bytes(data)


#: Pause before asking a busy detector again.
BUSY_RETRY_SECONDS = 0.05


def start_acquisition(host: str, control_port: int, timeout: float, frames: int | None) -> None:
    """Set the frame count and start; while the detector is still busy (finishing the previous
    acquisition) ask again, until ``timeout`` seconds after the first request in all."""
    deadline = time.monotonic() + timeout
    busy = None  # the last "busy" answer
    with MerlinControl(host, control_port, timeout) as control:
        while True:
            try:
                if frames:
                    control._request(request_text("SET", "NUMFRAMESTOACQUIRE", frames), deadline)
                control._request(request_text("CMD", "STARTACQUISITION"), deadline)
                return
            except MerlinCommandError as err:
                if err.code != 1:
                    raise
                busy = err
            except TimeoutError:
                if busy is None:
                    raise
            if busy is not None and time.monotonic() + BUSY_RETRY_SECONDS >= deadline:
                raise MerlinCommandError(f"{busy}, still after {timeout} s", code=1) from None
            time.sleep(BUSY_RETRY_SECONDS)
