"""The text of the Merlin control port (docs/format.md §12): requests and replies, for both sides.

A request is ``GET,<name>``, ``SET,<name>,<value>`` or ``CMD,<name>``; the reply
echoes it and ends with a status code (``GET`` replies put the value before
it). Every message travels in an ``MPX`` frame (:func:`.mpx.mpx_message`).
"""

from __future__ import annotations

#: Status codes at the end of every reply.
STATUS = {0: "ok", 1: "busy", 2: "not recognised", 3: "out of range"}
#: Longest control message either side takes: real ones are a few dozen bytes.
MAX_MESSAGE_BYTES = 4096


def request_text(kind: str, name: str, value=None) -> str:
    """``GET,NAME``, ``SET,NAME,VALUE`` or ``CMD,NAME``."""
    return f"{kind},{name}" + ("" if value is None else f",{value}")


def parse_request(text: str) -> tuple[str, str, str]:
    """``(kind, NAME, value)`` of a request (``value`` is ``""`` for GET and CMD)."""
    kind, _, rest = text.partition(",")
    name, _, value = rest.partition(",")
    return kind, name.strip().upper(), value


def reply_text(kind: str, name: str, status: int, value=None) -> str:
    """The reply to a request: its echo, the value of a successful GET, the status."""
    return f"{kind},{name}," + (f"{value}," if kind == "GET" and status == 0 else "") + str(status)


def parse_reply(reply: str, request: str) -> tuple[int, str] | None:
    """``(status, value)`` of the reply to ``request`` (value: a GET's, else ``""``), or
    ``None`` when the reply does not echo the request and end with a status code."""
    echo, _, code = reply.rpartition(",")
    kind = request.split(",", 1)[0]
    echoed = request if kind != "SET" else request.rsplit(",", 1)[0]
    if not code.strip().isdigit() or not echo.startswith(echoed):
        return None
    return int(code), (echo[len(echoed) + 1 :] if kind == "GET" else "")
