"""Byte sources: where the bytes of a ``.mib`` file come from.

The bottom of the data flow (design.md, "Byte sources"): a local file, an
in-memory buffer, a URL read by byte ranges through fsspec (:class:`Remote`)
or an open binary file object (:class:`FileObject`), with the bytes before
frame 0 (``base``) and before every frame (``prefix``, 15 for MPX captures)
that say where frames sit. Files are read with ``pread`` into buffers the
caller owns, never through a memory map, so a file that shrinks while it is
read gives :class:`MIBFormatError` instead of a SIGBUS that would kill the
process. Nothing here knows what a header or a pixel is.
"""

from __future__ import annotations

import io
import os
import re
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..errors import MIBFormatError, MissingPackage, where
from . import http
from .http import MISSING

_O_BINARY = getattr(os, "O_BINARY", 0)
#: ``scheme://`` of a URL (a Windows drive letter ``C:\\`` is not one).
#: The packages fsspec needs for the protocols the ``remote`` extra covers.
BACKENDS = {"http": "aiohttp", "https": "aiohttp", "s3": "s3fs"}
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


class LocalFile:
    """A local file opened read-only: ``pread`` and ``preadv`` on one descriptor."""

    remote = False

    def __init__(self, path: str):
        self.path = path
        self.fd = open_fd(path)

    def pread(self, offset: int, length: int) -> bytes:
        return pread(self.fd, length, offset)

    def pread_many(self, offsets, length: int) -> list[bytes]:
        return [pread(self.fd, length, int(o)) for o in offsets]

    def read_into(self, offset: int, buffer, name: str, frame: int | None = None) -> None:
        read_exact(self.fd, offset, buffer, name, frame)

    def read_scattered(self, offset: int, heads, payloads, name: str, frame: int | None = None) -> None:
        """Consecutive records from ``offset``, each split into a row of ``heads`` and of ``payloads``
        (2-D uint8 arrays, as many rows as records), with one ``preadv``."""
        views = [v for pair in zip(heads, payloads) for v in pair]
        expected = heads.nbytes + payloads.nbytes
        if preadv(self.fd, views, offset) == expected:
            return
        whole = bytearray(expected)  # a short read: the plain way, which also names a shortened file
        read_exact(self.fd, offset, whole, name, frame)
        records = memoryview(whole).cast("B")
        width = heads.shape[1]
        stride = width + payloads.shape[1]
        for i in range(heads.shape[0]):
            heads[i] = records[i * stride : i * stride + width]
            payloads[i] = records[i * stride + width : (i + 1) * stride]

    def close(self) -> None:
        os.close(self.fd)


class Remote:
    """A file named by an fsspec URL (``s3://``, ``https://``, ``memory://`` ...), read by byte ranges.

    Picklable as its URL and ``storage_options`` (never an open connection),
    so lazy chunks run on ``dask.distributed`` workers; ``str`` and ``repr``
    show the URL without its query and user information (a presigned URL's
    signature, a password), which is also what metadata and messages record.
    The first 64 KiB are fetched once and kept: opening a file reads its
    first header from them. Connections and reads time out after
    :data:`.http.CONNECT_SECONDS` and :data:`.http.READ_SECONDS` unless the
    ``storage_options`` set their own.
    """

    remote = True
    HEAD_BYTES = 64 << 10

    def __init__(self, url: str, storage_options: dict | None = None):
        self.url = url
        self.name = public_url(url)
        self.storage_options = dict(storage_options or {})
        self._fs = self._path = self._head = self._size = None

    def __repr__(self) -> str:
        return f"Remote({self.name!r})"

    def __str__(self) -> str:
        return self.name

    def __reduce__(self):
        return Remote, (self.url, self.storage_options)

    @property
    def _http(self) -> bool:
        return self.url.split("://", 1)[0].lower() in ("http", "https")

    def _filesystem(self):
        if self._fs is None:
            try:
                import fsspec
            except ImportError:
                raise MissingPackage(f"reading {self.name}", "fsspec", "remote") from None
            options = http.with_timeouts(self.url.split("://", 1)[0].lower(), self.storage_options)
            try:
                self._fs, self._path = fsspec.core.url_to_fs(self.url, **options)
            except ImportError as err:
                protocol = self.url.split("://", 1)[0].lower()
                if protocol in BACKENDS:
                    raise MissingPackage(f"reading {self.name}", BACKENDS[protocol], "remote") from None
                advice = str(err).rstrip(".") or f"install the fsspec backend for {protocol}://"
                raise ImportError(f"reading {self.name} needs a package that is not installed ({advice})") from None
        return self._fs, self._path

    def _missing(self) -> FileNotFoundError:
        return FileNotFoundError(f"`path`: no such file: {self.name!r}")

    def size(self) -> int:
        """Bytes in the object (one metadata request, kept)."""
        if self._size is None:
            fs, path = self._filesystem()
            try:
                info = fs.info(path)
            except (FileNotFoundError, PermissionError) as err:  # S3 answers 403 for a missing key
                cause = err.__cause__  # fsspec's HTTP info calls every failure "not found"
                if cause is None or isinstance(cause, FileNotFoundError) or getattr(cause, "status", None) in MISSING:
                    raise self._missing() from None
                raise OSError(f"{self.name}: cannot read it: {type(cause).__name__}: {cause}") from err
            except Exception as err:
                raise OSError(f"{self.name}: cannot read it: {type(err).__name__}: {err}") from err
            if info.get("type") == "directory":
                raise IsADirectoryError(f"`path`: {self.name!r} is a directory, not a .mib file")
            self._size = int(info["size"])
        return self._size

    def fetch(self, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (fewer at the end of the object); errors name the URL and range."""
        return self.fetch_many([start], end - start)[0]

    def fetch_many(self, starts: list[int], length: int) -> list[bytes]:
        """``length`` bytes (fewer at the end) from each of ``starts``, requested concurrently."""
        if not starts:
            return []
        fs, path = self._filesystem()
        ends = [s + length for s in starts]
        try:
            if self._http:
                from fsspec.asyn import sync

                async def all_ranges():
                    import asyncio

                    return await asyncio.gather(
                        *(http.get_range(fs, path, s, e, self.name) for s, e in zip(starts, ends))
                    )

                return sync(fs.loop, all_ranges)
            parts = fs.cat_ranges([path] * len(starts), starts, ends, on_error="raise")
        except (FileNotFoundError, PermissionError):
            raise self._missing() from None
        except http.RangeError:
            raise
        except Exception as err:
            raise self._failed(starts, ends, err) from err
        return [self._checked(p, s, e) for p, s, e in zip(parts, starts, ends)]

    def _failed(self, starts, ends, err) -> OSError:
        what = f"bytes {starts[0]}-{ends[0] - 1}" if len(starts) == 1 else f"{len(starts)} ranges"
        return OSError(f"{self.name}: reading {what} failed: {type(err).__name__}: {err}")

    def _checked(self, data: bytes, start: int, end: int) -> bytes:
        if len(data) > end - start:
            raise OSError(
                f"{self.name}: asked for bytes {start}-{end - 1} ({end - start} bytes) and got {len(data)}: "
                "the server ignores Range requests; nothing from this answer is used"
            )
        return data

    def pread(self, offset: int, length: int) -> bytes:
        if offset + length <= self.HEAD_BYTES:
            if self._head is None:
                self._head = self.fetch(0, min(self.HEAD_BYTES, self.size()))
            return self._head[offset : offset + length]
        return self.fetch(offset, offset + length)

    def pread_many(self, offsets, length: int) -> list[bytes]:
        """Many ranges in one concurrent batch."""
        return self.fetch_many([int(o) for o in offsets], length)

    def read_into(self, offset: int, buffer, name: str, frame: int | None = None) -> None:
        view = memoryview(buffer).cast("B")
        data = self.fetch(offset, offset + view.nbytes)
        if len(data) < view.nbytes:
            raise MIBFormatError(
                f"{where(name, frame, offset)}: object shortened while reading: expected {view.nbytes} bytes, "
                f"got {len(data)}"
            )
        view[:] = data

    def sibling(self, suffix: str) -> Remote:
        """The same URL with another file extension (the ``.hdr`` beside a ``.mib``)."""
        head, _, query = self.url.partition("?")
        stem = head[: head.rfind(".")] if "." in head.rsplit("/", 1)[-1] else head
        return Remote(stem + suffix + ("?" + query if query else ""), self.storage_options)

    def close(self) -> None:
        pass


def public_url(url: str) -> str:
    """``url`` without its query, fragment and user information: what may be shown and recorded.

    A presigned URL's query is its signature, a password may sit before the host.
    """
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class FileObject:
    """An open binary file object (``seek`` and ``readinto`` or ``read``), shared under a lock.

    For this process only: lazy chunks on ``dask.distributed`` workers need a
    path or URL.
    """

    remote = True

    def __init__(self, f):
        if not (hasattr(f, "seek") and (hasattr(f, "readinto") or hasattr(f, "read"))):
            raise TypeError(f"`path`: a file object needs seek() and read(); {type(f).__name__} has not")
        self.file = f
        self.name = str(getattr(f, "name", None) or f"<{type(f).__name__}>")
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileObject({self.name!r})"

    def __str__(self) -> str:
        return self.name

    def __reduce__(self):
        raise TypeError(f"{self.name}: an open file object cannot go to another process; pass a path or URL")

    def size(self) -> int:
        with self._lock:
            self.file.seek(0, os.SEEK_END)  # its return value is not to be relied on (some return None)
            return self.file.tell()

    def pread(self, offset: int, length: int) -> bytes:
        buffer = bytearray(length)
        with self._lock:
            got = self._fill(offset, memoryview(buffer))
        return bytes(buffer[:got])

    def pread_many(self, offsets, length: int) -> list[bytes]:
        return [self.pread(int(o), length) for o in offsets]

    def read_into(self, offset: int, buffer, name: str, frame: int | None = None) -> None:
        view = memoryview(buffer).cast("B")
        with self._lock:
            got = self._fill(offset, view)
        if got < view.nbytes:
            raise MIBFormatError(
                f"{where(name, frame, offset)}: file shortened while reading: expected {view.nbytes} "
                f"bytes, the file ends after {got}"
            )

    def _fill(self, offset: int, view: memoryview) -> int:
        """Fill ``view`` from ``offset``; the bytes read (fewer only at the end of the file).
        ``read``/``readinto`` may legally return fewer bytes than asked for: read again."""
        self.file.seek(offset)
        done = 0
        while done < view.nbytes:
            if hasattr(self.file, "readinto"):
                got = self.file.readinto(view[done:])
            else:
                chunk = self.file.read(view.nbytes - done)
                got = len(chunk or b"")
                view[done : done + got] = chunk or b""
            if not got:
                break
            done += got
        return done

    def close(self) -> None:
        pass


def open_reader(path) -> LocalFile | Remote | FileObject:
    """Something to read ``path``'s bytes with (a local path is opened; close it after)."""
    return path if isinstance(path, (Remote, FileObject)) else LocalFile(path)


@dataclass(frozen=True)
class Source:
    """A ``.mib`` file (``path``: local, :class:`Remote` or :class:`FileObject`) or a buffer."""

    name: str
    size: int
    path: str | Remote | FileObject | None = None
    buffer: memoryview | None = None
    base: int = 0  # byte offset of frame 0's header
    prefix: int = 0  # bytes before each frame (MPX captures: 15)

    @property
    def remote(self) -> bool:
        """Read through fsspec or a file object (no memory map, no folder listing)."""
        return isinstance(self.path, (Remote, FileObject))

    def pread(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer at the end)."""
        if self.buffer is not None:
            return bytes(self.buffer[offset : offset + length])
        reader = open_reader(self.path)
        try:
            return reader.pread(offset, length)
        finally:
            reader.close()

    def pread_many(self, offsets, length: int) -> list[bytes]:
        """``length`` bytes (fewer at the end) at each of ``offsets``, one open file."""
        if self.buffer is not None:
            return [bytes(self.buffer[o : o + length]) for o in offsets]
        reader = open_reader(self.path)
        try:
            return reader.pread_many(offsets, length)
        finally:
            reader.close()


@dataclass(frozen=True)
class Segment:
    """Frames ``first .. first+count`` of an acquisition, held by one file."""

    path: str | None
    first: int
    count: int
    base: int = 0  # byte offset of frame 0's header in the file
    prefix: int = 0  # bytes before each frame (MPX captures: 15)


def is_url(path) -> bool:
    """True for ``scheme://...`` text (``file://`` included)."""
    return isinstance(path, str) and bool(_URL.match(path))


def file_stem(path) -> str:
    """The name of a path or URL without folder and extension: what outputs are named after.

    From a URL's path only, never its query (a presigned URL's signature may hold ``/``).
    """
    if isinstance(path, Remote) or is_url(path):
        path = public_url(str(path) if isinstance(path, Remote) else path).rsplit("/", 1)[-1]
    return Path(os.fspath(path)).stem


def is_reference(path) -> bool:
    """True for a reference file (``rsciio-mib reference``): a ``.json`` path or URL."""
    return isinstance(path, (str, os.PathLike)) and os.fspath(path).lower().endswith(".json")


def segment_source(segment: Segment) -> Source:
    """The file of one segment as a :class:`Source`."""
    return Source(name=str(segment.path), size=0, path=segment.path, base=segment.base, prefix=segment.prefix)


def check_path(path) -> str:
    """The path as ``str`` if it names a regular file; a clear error otherwise.

    Special files (FIFOs, devices, sockets) are refused from ``stat`` alone,
    without opening them: opening a FIFO for reading would block.
    """
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if path == "":
        raise ValueError("`path` is an empty string: name a .mib file")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"`path`: no such file: {path!r}") from None
    except OSError as err:
        raise OSError(f"`path`: cannot read {path!r}: {err.strerror or err}") from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"`path`: {path!r} is a directory, not a .mib file")
    if not stat.S_ISREG(mode):
        raise ValueError(f"`path`: {path!r} is not a regular file (a FIFO, device or socket); it is not opened")
    return path


def open_source(path, storage_options: dict | None = None) -> Source:
    """Wrap a path (``str`` or ``os.PathLike``), a URL, a file object or a bytes-like buffer."""
    if isinstance(path, (Remote, FileObject)):
        return Source(name=str(path), size=path.size(), path=path)
    if storage_options and not is_url(path):
        raise ValueError(f"`storage_options` apply to URLs (s3://, https:// ...), not to {path!r}")
    if isinstance(path, str) and path.startswith("file://"):
        path = path[len("file://") :]
    if is_url(path):
        return open_source(Remote(path, storage_options))
    if isinstance(path, (bytes, bytearray, memoryview)):
        view = memoryview(path).cast("B")
        return Source(name="<buffer>", size=view.nbytes, buffer=view)
    if isinstance(path, (str, os.PathLike)):
        path = check_path(path)
        return Source(name=path, size=os.path.getsize(path), path=path)
    if hasattr(path, "seek") and (hasattr(path, "read") or hasattr(path, "readinto")):
        return open_source(FileObject(path))
    raise TypeError(
        "`path` must be a str, pathlib.Path, URL, open binary file or bytes-like buffer, not " + type(path).__name__
    )


def open_fd(path: str) -> int:
    """A read-only file descriptor (the file is never opened for writing)."""
    return os.open(path, os.O_RDONLY | _O_BINARY)


#: ``pread``/``preadv`` exist on POSIX systems; elsewhere (Windows) a file is read by a seek and
#: reads under one lock, so threads never move each other's file position.
_SEEK_LOCK = threading.Lock()


def pread(fd: int, length: int, offset: int) -> bytes:
    """Up to ``length`` bytes at ``offset`` (fewer at the end of the file).

    Where the system has no positioned reads (Windows: no ``os.preadv``), a seek and a read
    under one lock.
    """
    if hasattr(os, "preadv"):
        return os.pread(fd, length, offset)
    buffer = bytearray(length)
    return bytes(buffer[: preadv(fd, [buffer], offset)])


def preadv(fd: int, buffers, offset: int) -> int:
    """Fill ``buffers`` in turn from ``offset``; the number of bytes read (fewer at the end of the file)."""
    if hasattr(os, "preadv"):
        return os.preadv(fd, buffers, offset)
    total = 0
    with _SEEK_LOCK, io.FileIO(fd, "rb", closefd=False) as file:
        file.seek(offset)
        for buffer in buffers:
            view = memoryview(buffer).cast("B")
            done = 0
            while done < view.nbytes:
                got = file.readinto(view[done:])
                if not got:
                    return total + done
                done += got
            total += done
    return total


def read_exact(fd: int, offset: int, buffer, name: str, frame: int | None = None) -> None:
    """Fill ``buffer`` (writable, contiguous) with the file's bytes from ``offset``.

    Raises
    ------
    MIBFormatError
        When the file ends first: it was shortened after it was opened.
    """
    view = memoryview(buffer).cast("B")
    done = 0
    while done < view.nbytes:
        got = preadv(fd, [view[done:]], offset + done)
        if got == 0:
            raise MIBFormatError(
                f"{where(name, frame, offset)}: file shortened while reading: expected {view.nbytes} bytes, "
                f"the file ends after {done}"
            )
        done += got
