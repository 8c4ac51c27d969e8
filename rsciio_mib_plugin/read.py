"""Read frames from files and buffers into arrays: eager, lazy (dask) and memmap.

Eager reads scatter each frame's payload straight into the output array with
``os.preadv`` (headers go to a scratch buffer), then byte-swap in place while
the block is still in cache. Lazy arrays are dask graphs of independent chunk
reads that carry only a path, offsets and the geometry, so they pickle for
``dask.distributed``.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .decode import decode_frames
from .errors import MIBFormatError, where
from .header import PROBE_BYTES, FrameHeader, header_length, parse_header
from .layout import Geometry

#: Frames per preadv call are bounded by IOV_MAX (two buffers per frame).
try:
    _IOV_MAX = os.sysconf("SC_IOV_MAX")
except (AttributeError, ValueError, OSError):
    _IOV_MAX = 1024
#: Bytes decoded at once for RAW files and buffers (bounds scratch memory).
BLOCK_BYTES = 16 << 20
#: Default lazy chunk size.
CHUNK_BYTES = 128 << 20


@dataclass(frozen=True)
class Source:
    """A ``.mib`` file or an in-memory buffer."""

    name: str
    size: int
    path: str | None = None
    buffer: memoryview | None = None

    def pread(self, offset: int, length: int) -> bytes:
        if self.buffer is not None:
            return bytes(self.buffer[offset : offset + length])
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(length)


def open_source(path) -> Source:
    """Wrap a path (str or os.PathLike) or a bytes-like buffer."""
    if isinstance(path, (bytes, bytearray, memoryview)):
        view = memoryview(path).cast("B")
        return Source(name="<buffer>", size=view.nbytes, buffer=view)
    if isinstance(path, (str, os.PathLike)):
        path = os.fspath(path)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No such file: {path!r}")
        return Source(name=path, size=os.path.getsize(path), path=path)
    raise TypeError(f"`path` must be a str, pathlib.Path or bytes-like buffer, not {type(path).__name__}")


def read_header_at(source: Source, offset: int, frame: int) -> FrameHeader:
    """Parse the frame header that starts at ``offset``."""
    probe = source.pread(offset, PROBE_BYTES)
    if not probe:
        raise MIBFormatError(f"{where(source.name, frame, offset)}: no data (empty file or buffer)")
    length = header_length(probe, source.name, frame, offset)
    raw = source.pread(offset, length)
    if len(raw) < length:
        raise MIBFormatError(
            f"{where(source.name, frame, offset)}: header length (field 2) is {length} bytes "
            f"but only {len(raw)} bytes follow"
        )
    return parse_header(raw, source.name, frame, offset)


def read_headers(source: Source, geometry: Geometry, start: int, count: int) -> np.ndarray:
    """The raw header bytes of frames ``start .. start+count`` (dtype ``S<n>``)."""
    dtype = np.dtype([("header", f"S{geometry.header_bytes}"), ("data", f"V{geometry.payload_bytes}")])
    offset = start * geometry.frame_bytes
    if source.buffer is not None:
        frames = np.frombuffer(source.buffer, dtype=dtype, count=count, offset=offset)
    else:
        frames = np.memmap(source.path, dtype=dtype, mode="r", offset=offset, shape=(count,))
    return np.array(frames["header"])


def memmap_frames(source: Source, geometry: Geometry, start: int, shape: tuple[int, ...], mode: str):
    """Structured view (``header``, ``data``) of frames in the file's own dtype."""
    if geometry.raw:
        data_dtype = (geometry.file_dtype, (geometry.payload_bytes // 8,))
    else:
        data_dtype = (geometry.file_dtype, geometry.stored_shape)
    dtype = np.dtype([("header", f"S{geometry.header_bytes}"), ("data", data_dtype)])
    offset = start * geometry.frame_bytes
    if source.buffer is not None:
        count = math.prod(shape)
        return np.frombuffer(source.buffer, dtype=dtype, count=count, offset=offset).reshape(shape)
    return np.memmap(source.path, dtype=dtype, mode=mode, offset=offset, shape=shape)


def read_eager(source: Source, geometry: Geometry, start: int, count: int, threads: int = 2) -> np.ndarray:
    """Read and decode frames ``start .. start+count`` into a new native array."""
    out = np.empty((count,) + geometry.shape, dtype=geometry.dtype)
    if source.buffer is not None:
        _decode_buffer(source, geometry, start, count, out)
        return out
    blocks = _blocks(geometry, count)
    fd = os.open(source.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        if threads > 1 and len(blocks) > 1:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda b: read_into(fd, geometry, start + b[0], out[b[0] : b[1]]), blocks))
        else:
            for a, b in blocks:
                read_into(fd, geometry, start + a, out[a:b])
    finally:
        os.close(fd)
    return out


def _blocks(geometry: Geometry, count: int) -> list[tuple[int, int]]:
    # Sized by the larger of stored and decoded frame, so RAW blocks stay small
    # enough to spread over threads.
    decoded = math.prod(geometry.shape) * geometry.dtype.itemsize
    per_block = max(1, min(_IOV_MAX // 2, BLOCK_BYTES // max(geometry.frame_bytes, decoded)))
    return [(a, min(a + per_block, count)) for a in range(0, count, per_block)]


def read_into(fd: int, geometry: Geometry, frame: int, out: np.ndarray) -> None:
    """Read ``len(out)`` consecutive frames starting at ``frame`` into ``out``."""
    count = out.shape[0]
    offset = frame * geometry.frame_bytes
    if geometry.raw or not hasattr(os, "preadv"):
        for a, b in _blocks(geometry, count):
            raw = os.pread(fd, (b - a) * geometry.frame_bytes, offset + a * geometry.frame_bytes)
            _check_length(len(raw), (b - a) * geometry.frame_bytes, fd, frame + a)
            frames = np.frombuffer(raw, np.uint8).reshape(b - a, geometry.frame_bytes)
            decode_frames(frames[:, geometry.header_bytes :], geometry, out[a:b])
        return
    scratch = bytearray(geometry.header_bytes)
    flat = out.reshape(count, -1).view(np.uint8)
    for a, b in _blocks(geometry, count):
        buffers = []
        for i in range(a, b):
            buffers += [scratch, flat[i]]
        got = os.preadv(fd, buffers, offset + a * geometry.frame_bytes)
        _check_length(got, (b - a) * geometry.frame_bytes, fd, frame + a)
        if geometry.file_dtype.itemsize > 1 and np.little_endian:
            out[a:b].byteswap(inplace=True)


def _check_length(got: int, expected: int, fd: int, frame: int) -> None:
    if got < expected:
        raise MIBFormatError(
            f"file descriptor {fd}, frame {frame}: expected {expected} bytes, read {got}; "
            "the file was shortened while reading"
        )


def _decode_buffer(source: Source, geometry: Geometry, start: int, count: int, out: np.ndarray) -> None:
    frames = np.frombuffer(
        source.buffer, np.uint8, count=count * geometry.frame_bytes, offset=start * geometry.frame_bytes
    ).reshape(count, geometry.frame_bytes)
    for a, b in _blocks(geometry, count):
        decode_frames(frames[a:b, geometry.header_bytes :], geometry, out[a:b])


# --- lazy ----------------------------------------------------------------------


def default_chunks(nav_shape: tuple[int, ...], geometry: Geometry, limit: int = CHUNK_BYTES) -> tuple[tuple[int, ...], ...]:
    """Whole-frame chunks of about ``limit`` bytes, split along the slowest axes."""
    frame_bytes = math.prod(geometry.shape) * geometry.dtype.itemsize
    budget = max(1, limit // frame_bytes)  # frames per chunk
    chunks = []
    for size in reversed(nav_shape):
        step = max(1, min(size, budget))
        chunks.append(step)
        budget = max(1, budget // size)
    return tuple(reversed(chunks)) + geometry.shape


def lazy_array(source: Source, geometry: Geometry, start: int, nav_shape: tuple[int, ...], chunks="auto"):
    """A dask array of frames, one independent read task per chunk."""
    import dask.array as da
    from dask.array.core import normalize_chunks

    shape = tuple(nav_shape) + geometry.shape
    if isinstance(chunks, str) and chunks == "auto":
        chunks = default_chunks(tuple(nav_shape), geometry)
    try:
        chunks = normalize_chunks(chunks, shape, limit=CHUNK_BYTES, dtype=geometry.dtype)
    except (ValueError, TypeError) as err:
        raise ValueError(f"`chunks`={chunks!r} cannot chunk an array of shape {shape}: {err}") from None
    name = "mib-" + _token(source, geometry, start, shape, chunks)
    graph = {}
    for index in np.ndindex(*[len(c) for c in chunks]):
        slices = tuple(
            slice(sum(c[:i]), sum(c[: i + 1])) for c, i in zip(chunks, index)
        )
        graph[(name,) + index] = (read_chunk, source.path, geometry, start, tuple(nav_shape), slices)
    return da.Array(graph, name, chunks, dtype=geometry.dtype)


def _token(*args) -> str:
    from dask.base import tokenize

    return tokenize(*[repr(a) for a in args])


def read_chunk(path: str, geometry: Geometry, start: int, nav_shape: tuple[int, ...], slices: tuple[slice, ...]) -> np.ndarray:
    """Read one chunk: the frames under the navigation slices, whole, then the signal slice."""
    nav_slices, sig_slices = slices[: len(nav_shape)], slices[len(nav_shape) :]
    grid = np.ix_(*[np.arange(s.start, s.stop) for s in nav_slices]) if nav_shape else ()
    frames = (np.ravel_multi_index(grid, nav_shape).ravel() if nav_shape else np.zeros(1, np.int64)) + start
    chunk_nav = tuple(s.stop - s.start for s in nav_slices)
    out = np.empty((frames.size,) + geometry.shape, dtype=geometry.dtype)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        # Consecutive frame numbers are read in one call each.
        breaks = np.flatnonzero(np.diff(frames) != 1) + 1
        for a, b in zip(np.r_[0, breaks], np.r_[breaks, frames.size]):
            read_into(fd, geometry, int(frames[a]), out[a:b])
    finally:
        os.close(fd)
    out = out.reshape(chunk_nav + geometry.shape)
    if any(s != slice(0, n) for s, n in zip(sig_slices, geometry.shape)):
        out = np.ascontiguousarray(out[(Ellipsis,) + tuple(sig_slices)])
    return out
