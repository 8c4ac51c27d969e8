"""Byte ranges over HTTP(S), checked: status, ``Content-Range`` and length, with bounded reads.

fsspec's HTTP file system reads a whole answer before anything can look at
it, and does not compare ``Content-Range`` with the range asked for. A
server that ignores ``Range`` and answers a 1 MiB request with 2.5 GB, or
answers one frame late, would give a huge allocation or the wrong frames.
Here an answer is read only up to the bytes asked for (plus one, to tell a
longer one; a 200, the whole object, not at all), its ``Content-Range`` must
be the range asked for, and a 403 for a missing object (what S3 and CDNs
answer) is a missing object.
The session, its timeouts and the user's options stay fsspec's.
"""

from __future__ import annotations

import re

#: Seconds to wait for a connection and for each read of an answer, unless the
#: ``storage_options`` say otherwise (``client_kwargs={"timeout": aiohttp.ClientTimeout(...)}``
#: for HTTP, ``config_kwargs={"connect_timeout": ..., "read_timeout": ...}`` for S3).
CONNECT_SECONDS = 10
READ_SECONDS = 30

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
#: Statuses that mean "there is no such object for you": S3 and CDNs answer 403 for a missing key.
MISSING = (401, 403, 404, 410)


def with_timeouts(protocol: str, options: dict) -> dict:
    """``options`` with bounded connect/read timeouts added where the user gave none."""
    options = dict(options)
    if protocol in ("http", "https"):
        client = dict(options.get("client_kwargs") or {})
        if "timeout" not in client:
            import aiohttp

            client["timeout"] = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_SECONDS, sock_read=READ_SECONDS)
        options["client_kwargs"] = client
    elif protocol in ("s3", "s3a"):
        config = dict(options.get("config_kwargs") or {})
        config.setdefault("connect_timeout", CONNECT_SECONDS)
        config.setdefault("read_timeout", READ_SECONDS)
        options["config_kwargs"] = config
    return options


class RangeError(OSError):
    """The server answered a range request with something else than the range."""


class MissingObject(FileNotFoundError):
    """The server says the object is not there (404), or not there for us (401, 403, 410)."""


async def get_range(fs, url: str, start: int, end: int, name: str) -> bytes:
    """Bytes ``start`` to ``end`` (fewer at the end of the object) of ``url``, with an fsspec
    ``HTTPFileSystem``'s session and options; ``name`` (the URL without its query) in errors.

    Raises
    ------
    MissingObject
        For 401, 403, 404 and 410.
    RangeError
        When the server ignores the range (200), answers another range than the one asked
        for or more bytes than asked for, or an error status.
    """
    options = dict(fs.kwargs)
    headers = dict(options.pop("headers", None) or {})
    headers["Range"] = f"bytes={start}-{end - 1}"
    session = await fs.set_session()
    wanted = end - start
    async with session.get(fs.encode_url(url), headers=headers, **options) as answer:
        if answer.status in MISSING:
            raise MissingObject(f"`path`: no such file: {name!r} (the server answers {answer.status})")
        if answer.status == 416:  # the range starts at or after the end of the object
            return b""
        if answer.status not in (200, 206):
            raise RangeError(f"{name}: reading bytes {start}-{end - 1}: the server answers {answer.status}")
        if answer.status == 200:  # the whole object: not even read
            raise RangeError(
                f"{name}: asked for bytes {start}-{end - 1} ({wanted} bytes) and got the whole object: "
                "the server ignores Range requests; nothing from this answer is used"
            )
        stated = _CONTENT_RANGE.fullmatch(answer.headers.get("Content-Range", "").strip())
        if stated and (int(stated[1]) != start or int(stated[2]) > end - 1):
            raise RangeError(
                f"{name}: asked for bytes {start}-{end - 1} and the server answers bytes {stated[1]}-{stated[2]} "
                "(its Content-Range): nothing from this answer is used"
            )
        body = b""
        while len(body) <= wanted and (more := await answer.content.read(wanted + 1 - len(body))):
            body += more
        if len(body) > wanted:
            raise RangeError(
                f"{name}: asked for bytes {start}-{end - 1} ({wanted} bytes) and got more: "
                "the server ignores Range requests; nothing from this answer is used"
            )
        return body
