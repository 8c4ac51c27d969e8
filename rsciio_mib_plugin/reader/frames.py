"""Read frames from files and buffers into arrays: eager, lazy (dask) and memmap.

Frames are read through short-lived memory maps of one block at a time and
converted to native byte order while they are copied into the output, so the
whole file is never mapped and memory stays at the output array. Lazy arrays are dask graphs of independent chunk
reads that carry only paths, frame numbers and the geometry, so they pickle
for ``dask.distributed``. Frames of a multi-file series are addressed by their
number in the acquisition; each file is a :class:`Segment`.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import mmap
import os
import threading
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .._progress import progress_bar
from ..errors import MIBFormatError, MIBWarning, where
from ..format.decode import decode_frames
from ..format.frame_header import frame_numbers
from ..format.geometry import Geometry
from ..format.header_check import check_headers
from ..format.totals import frame_totals
from ..sources.source import FileObject, Remote, Segment, Source, open_reader
from .scan import ScanPlan
from .transforms import Transform, grouped_frames

#: Bytes read and decoded at once (bounds the memory beside the output).
BLOCK_BYTES = 16 << 20
#: Local files: bytes of frames read with one ``preadv`` and decoded while in the CPU cache ...
SCATTER_BYTES = 1 << 20
#: ... in at most this many frames (two buffers each: header and payload; IOV_MAX is 1024).
MAX_SCATTER = 256
#: Default lazy chunk size.
CHUNK_BYTES = 128 << 20


def _framing(source, geometry: Geometry, data_dtype):
    """Structured dtype of one stored frame (with its MPX prefix) and the offset of frame 0."""
    fields = [("mpx", f"V{source.prefix}")] if source.prefix else []
    dtype = np.dtype(fields + [("header", f"S{geometry.header_bytes}"), ("data", data_dtype)])
    return dtype, source.base - source.prefix


def read_headers(source: Source, geometry: Geometry, start: int, count: int) -> np.ndarray:
    """The raw header bytes of frames ``start .. start+count`` (dtype ``S<n>``).

    One ``pread`` per header: only the header bytes are read, and a file that
    shrinks meanwhile gives short reads, never a signal.
    """
    offsets = geometry.offset(start + np.arange(count, dtype=np.int64), source.base, source.prefix)
    raw = source.pread_many(offsets.tolist(), geometry.header_bytes)
    short = next((i for i, h in enumerate(raw) if len(h) < geometry.header_bytes), None)
    if short is not None:
        raise MIBFormatError(
            f"{where(source.name, start + short, int(offsets[short]))}: file shortened while reading: the frame "
            f"header is cut off after {len(raw[short])} of {geometry.header_bytes} bytes"
        )
    return np.array(raw, dtype=f"S{geometry.header_bytes}")


def memmap_frames(source: Source, geometry: Geometry, n_frames: int, plan: ScanPlan, mode: str):
    """Structured view (``header``, ``data``) of the planned frames, in the file's dtype.

    A view of the file, never a copy: interleaved counters and flyback frames
    are skipped with strides.
    """
    if geometry.raw:
        data_dtype = (geometry.file_dtype, (geometry.payload_bytes // 8,))
    else:
        data_dtype = (geometry.file_dtype, geometry.stored_shape)
    dtype, base = _framing(source, geometry, data_dtype)
    if source.buffer is not None:
        frames = np.frombuffer(source.buffer, dtype=dtype, count=n_frames, offset=base)
    else:
        frames = np.memmap(source.path, dtype=dtype, mode=mode, shape=(n_frames,), offset=base)
    first = plan.start + plan.offset
    shape = plan.shape or (1,)
    if len(shape) == 2 and not plan.contiguous:
        per_line = plan.line_frames or shape[1] * plan.step
        strides = (per_line * dtype.itemsize, plan.step * dtype.itemsize)
        view = np.lib.stride_tricks.as_strided(
            frames[first:], shape=shape, strides=strides, writeable=frames.flags.writeable
        )
    else:
        view = frames[first : first + (math.prod(shape) - 1) * plan.step + 1 : plan.step].reshape(shape)
    return view if plan.shape else view[0]


#: Byte ranges in flight at once when reading a URL or file object eagerly.
REMOTE_REQUESTS = 8


def fetch_all(source: Source) -> Source:
    """The bytes of a URL or file object in memory (``REMOTE_REQUESTS`` ranges at once), as a buffer source."""
    reader = source.path
    buffer = bytearray(source.size)
    view = memoryview(buffer)
    starts = range(0, source.size, BLOCK_BYTES)
    _parallel(
        lambda start: reader.read_into(start, view[start : start + BLOCK_BYTES], source.name),
        starts,
        REMOTE_REQUESTS,
    )
    return dataclasses.replace(source, path=None, buffer=view)


#: Eager loads larger than this show a progress bar when HyperSpy's preference says so (``True``: any size).
PROGRESS_BYTES = 256 << 20


@dataclass(frozen=True)
class FrameReader:
    """Reads the frames of one acquisition into arrays.

    It holds where the frames are (``segments``: the files, or ``buffer``),
    how they are stored (``geometry``) and what is done to them while they are
    read (``transform``: orientation, chip gap, binning). It carries no open
    file, so lazy chunks pickle for ``dask.distributed`` with it.
    """

    segments: tuple[Segment, ...]
    geometry: Geometry
    transform: Transform = Transform()
    buffer: memoryview | None = None  # the bytes of an in-memory file (never lazily read)
    name: str = "<buffer>"
    block_bytes: int = BLOCK_BYTES  # read and decoded at once: bounds the memory beside the output
    # The frame number of each stored frame, when frames are placed by number: the headers read
    # with the pixels are checked against it (a loss found by bisection assumes runs counting up).
    numbers: np.ndarray | None = None

    @classmethod
    def of(cls, source: Source, segments: tuple[Segment, ...], geometry: Geometry, transform: Transform):
        """The reader of ``source`` (a file, URL, file object or buffer) split into ``segments``."""
        return cls(segments, geometry, transform, source.buffer, source.name)

    # --- shapes of the output ------------------------------------------------------------

    def navigation_shape(self, plan: ScanPlan) -> tuple[int, ...]:
        return self.transform.navigation_shape(plan.shape)

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self.transform.frame_shape(self.geometry)

    @property
    def dtype(self) -> np.dtype:
        return self.transform.dtype(self.geometry)

    # --- eager -------------------------------------------------------------------------------

    def read_plan(
        self, plan: ScanPlan, threads: int = 2, show_progressbar: bool | None = False, totals: np.ndarray | None = None
    ) -> np.ndarray:
        """The planned frames, transformed, in a new native array shaped like the scan.

        Without a chip gap or binning the frames are decoded straight into the
        output; otherwise block by block, so memory is the output plus a few
        blocks of decoded frames. ``totals`` (optional, one ``uint64`` per
        output position) receives the counts of each output frame, taken while
        it is still in the CPU cache (:func:`.frame_totals`).
        """
        if not self.transform.plain:
            nav = self.navigation_shape(plan)
            groups = grouped_frames(plan.frame_numbers, tuple(slice(0, n) for n in nav), self.transform.bin_navigation)
            out = np.empty((groups.shape[0],) + self.frame_shape, self.dtype)
            self.read_groups(groups, out, threads)
            if totals is not None:  # binned counts may not fit the lanes of the fast count
                totals[...] = frame_totals(out).reshape(totals.shape)
            return out.reshape(nav + self.frame_shape)
        out = np.empty((plan.count,) + self.geometry.shape, dtype=self.geometry.dtype)
        bar = None
        if show_progressbar or (show_progressbar is None and out.nbytes > PROGRESS_BYTES):
            bar = progress_bar(show_progressbar, plan.count, "frames", f"Reading {os.path.basename(self.name)}")
        try:
            flat = None if totals is None else totals.reshape(-1)
            self.read(plan.frame_numbers(), out, threads, bar.update if bar else None, totals=flat)
        finally:
            if bar is not None:
                bar.close()
        return out.reshape(plan.shape + self.geometry.shape)

    def read_groups(self, groups: np.ndarray, out: np.ndarray, threads: int = 1, heads=None) -> None:
        """Each row of ``groups`` (the source frames of one output position), transformed and summed into ``out``.

        Gapping and binning are symmetric top to bottom, so frames are flipped as they are read.
        ``heads`` (optional, ``(groups.size, header_bytes)`` uint8) receives the frame headers.
        """
        transform = self.transform
        if transform.bin_signal == 1 and transform.bin_navigation == 1:  # the chips are placed while decoding
            self.read(groups.ravel(), out, threads, gap=transform.quad_gap, heads=heads)
            return
        per_group = groups.shape[1]
        step = max(1, _frames_per_block(self.geometry, self.block_bytes) // per_group)  # output positions per read

        def work(i):
            frames = groups[i : i + step].ravel()
            block = _scratch(frames.size, self.geometry)
            part = None if heads is None else heads[i * per_group : (i + step) * per_group]
            self.read(frames, block, 1, heads=part)
            if per_group == 1:
                transform.signal(block, out[i : i + step])
                return
            signal = transform.signal(block)
            signal.reshape((-1, per_group) + signal.shape[1:]).sum(axis=1, dtype=out.dtype, out=out[i : i + step])

        _parallel(work, range(0, groups.shape[0], step), threads)

    def read(
        self, frames: np.ndarray, out: np.ndarray, threads: int = 1, progress=None, gap=None, heads=None, totals=None
    ) -> None:
        """Read frames (numbers in the acquisition) into ``out``, oriented, files in parallel blocks.

        ``progress(n)`` is called after every block of ``n`` frames. Frame
        number -1 is a blank frame (a negative ``sync_offset``): zeros.
        ``gap`` places quad chips that many pixels apart (:func:`.decode_frames`).
        ``heads`` (optional, ``(len(frames), header_bytes)`` uint8) receives the
        frame headers read on the way (zeros for blank frames). ``totals``
        (optional, ``len(frames)`` uint64) receives each frame's counts.
        """
        if self.numbers is not None and heads is None:
            heads = np.empty((len(frames), self.geometry.header_bytes), np.uint8)
        self._read(frames, out, threads, progress, gap, heads, totals)
        if self.numbers is not None:
            self._check_numbers(frames, heads)

    def _check_numbers(self, frames: np.ndarray, heads: np.ndarray) -> None:
        """Warn when a frame read does not hold the number its position was given."""
        real = np.flatnonzero(frames >= 0)
        found = frame_numbers(np.ascontiguousarray(heads[real]).view(f"S{heads.shape[1]}").ravel())
        wrong = np.flatnonzero(found != self.numbers[frames[real]])
        if wrong.size:
            i = real[wrong[0]]
            warnings.warn(
                f"{self.name}: stored frame {frames[i]} holds frame number {found[wrong[0]]}, not "
                f"{self.numbers[frames[i]]}: frames before it were lost or are stored out of order, and "
                f"{wrong.size} frame(s) of this read are not where their numbers say",
                MIBWarning,
                stacklevel=3,
            )

    def _read(self, frames, out, threads, progress, gap, heads, totals) -> None:
        geometry, segments, flip = self.geometry, self.segments, self.transform.flip
        blank = frames < 0
        if blank.any():
            out[np.flatnonzero(blank)] = 0
            if heads is not None:
                heads[np.flatnonzero(blank)] = 0
            if totals is not None:
                totals[np.flatnonzero(blank)] = 0
        pieces = _pieces(segments, frames, _frames_per_block(geometry, self.block_bytes))
        if self.buffer is not None:
            seg = segments[0]
            stride = seg.prefix + geometry.frame_bytes
            stored = np.frombuffer(self.buffer, np.uint8, count=seg.count * stride, offset=seg.base - seg.prefix)
            stored = stored.reshape(-1, stride)
            for _, local, index, n in pieces:
                check_headers(
                    stored[local : local + n, : seg.prefix + geometry.header_bytes], geometry, self.name, local, seg
                )
                if heads is not None:
                    heads[index : index + n] = stored[
                        local : local + n, seg.prefix : seg.prefix + geometry.header_bytes
                    ]
                target = out[index : index + n]
                decode_frames(
                    stored[local : local + n, seg.prefix + geometry.header_bytes :],
                    geometry,
                    target[:, ::-1] if flip else target,
                    gap,
                    None if totals is None else totals[index : index + n],
                )
            return
        readers = {}
        try:
            for seg in sorted({p[0] for p in pieces}):
                readers[seg] = open_reader(segments[seg].path)

            def work(piece):
                seg, local, index, n = piece
                part = None if heads is None else heads[index : index + n]
                counts = None if totals is None else totals[index : index + n]
                read_into(readers[seg], geometry, local, out[index : index + n], segments[seg], flip, gap, part, counts)
                if progress is not None:
                    progress(n)

            if any(r.remote for r in readers.values()):
                threads = max(threads, REMOTE_REQUESTS)  # ranges in flight at once hide the latency
            _parallel(work, pieces, threads)
        finally:
            for reader in readers.values():
                reader.close()

    # --- lazy --------------------------------------------------------------------------------

    def lazy(self, plan: ScanPlan, chunks="auto"):
        """A dask array of the planned frames, one independent read task per chunk."""
        import dask.array as da
        from dask.array.core import normalize_chunks

        nav, frame, dtype = self.navigation_shape(plan), self.frame_shape, self.dtype
        shape = nav + frame
        if isinstance(chunks, str) and chunks == "auto":
            chunks = default_chunks(nav, frame, dtype)
        asked = chunks
        try:
            chunks = normalize_chunks(chunks, shape, limit=CHUNK_BYTES, dtype=dtype)
        except ZeroDivisionError:
            raise ValueError(f"`chunks`={asked!r}: chunk sizes must be positive") from None
        except (ValueError, TypeError) as err:
            raise ValueError(f"`chunks`={asked!r} cannot chunk an array of shape {shape}: {err}") from None
        if any(size <= 0 for c, n in zip(chunks, shape) if n for size in c):
            raise ValueError(f"`chunks`={asked!r} cannot chunk an array of shape {shape}: chunk sizes must be positive")
        chunks = _coarsen_signal_chunks(chunks, frame, dtype, asked)
        count = math.prod(len(c) for c in chunks)
        if count > MAX_CHUNKS:
            raise ValueError(
                f"`chunks`={asked!r} makes {count} chunks of an array of shape {shape}; at most {MAX_CHUNKS} "
                "are allowed (use larger chunks, or 'auto')"
            )
        name = "mib-" + _token(self.segments, self.geometry, self.transform, plan, chunks)
        bounds = [np.r_[0, np.cumsum(c)].tolist() for c in chunks]
        task = read_chunk if self.transform.plain else read_transformed_chunk
        graph = {}
        for index in np.ndindex(*[len(c) for c in chunks]):
            slices = tuple(slice(b[i], b[i + 1]) for b, i in zip(bounds, index))
            graph[(name,) + index] = (task, self, plan, slices)
        return da.Array(graph, name, chunks, dtype=dtype)


def _parallel(work, items, threads: int) -> None:
    """``work(item)`` for every item, on ``threads`` threads when there is more than one item."""
    if threads > 1 and len(items) > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, items))
    else:
        for item in items:
            work(item)


def _scratch(frames: int, geometry: Geometry) -> np.ndarray:
    """Per-thread decoded frames before they are gapped or binned (reused)."""
    shape = (frames,) + geometry.shape
    buf = getattr(_local, "scratch", None)
    if buf is None or buf.dtype != geometry.dtype or buf.size < math.prod(shape):
        buf = _local.scratch = np.empty(math.prod(shape), geometry.dtype)
    return buf[: math.prod(shape)].reshape(shape)


def _pieces(segments: tuple[Segment, ...], frames: np.ndarray, per_block: int) -> list[tuple[int, int, int, int]]:
    """Split frame numbers into reads: (segment, first local frame, output index, count)."""
    pieces = []
    firsts = [s.first for s in segments]
    breaks = np.flatnonzero((np.diff(frames) != 1) | (frames[:-1] < 0)) + 1  # a blank frame is a run of its own
    for a, b in zip(np.r_[0, breaks].tolist(), np.r_[breaks, frames.size].tolist()):
        frame, index = int(frames[a]), a
        if frame < 0:  # a blank frame (negative sync_offset): zero-filled by the caller
            continue
        while index < b:
            seg = bisect.bisect_right(firsts, frame) - 1
            n = min(b - index, segments[seg].first + segments[seg].count - frame, per_block)
            pieces.append((seg, frame - segments[seg].first, index, n))
            frame, index = frame + n, index + n
    return pieces


def _frames_per_block(geometry: Geometry, block_bytes: int = BLOCK_BYTES) -> int:
    # Sized by the larger of stored and decoded frame, so RAW blocks stay small
    # enough to spread over threads.
    decoded = math.prod(geometry.shape) * geometry.dtype.itemsize
    return max(1, block_bytes // max(geometry.frame_bytes, decoded))


_local = threading.local()


def _buffer(kind: str, nbytes: int) -> np.ndarray:
    """A per-thread buffer of ``kind`` the file is read into before decoding (reused: no page faults)."""
    buf = getattr(_local, kind, None)
    if buf is None or buf.size < nbytes:
        buf = np.empty(nbytes, np.uint8)
        setattr(_local, kind, buf)
    return buf[:nbytes]


def read_into(
    reader,
    geometry: Geometry,
    frame: int,
    out: np.ndarray,
    segment: Segment,
    flip: bool = False,
    gap=None,
    headers: np.ndarray | None = None,
    totals: np.ndarray | None = None,
) -> None:
    """Read ``len(out)`` consecutive frames starting at file frame ``frame`` into ``out``.

    Local files are read a few frames at a time (``SCATTER_BYTES``), one
    ``preadv`` putting the headers aside and the payloads into a reused
    per-thread buffer that is still in the CPU cache when it is decoded into
    ``out``, converting from big-endian while copying: one pass over the
    output. Other sources read the block (at most ``BLOCK_BYTES``) whole into
    that buffer first. Reading, not memory-mapping, keeps
    a file that shrinks meanwhile an error (:class:`MIBFormatError`) instead of
    a SIGBUS. Every frame header on the way is checked to start with ``MQ1,``
    and to state the same header length, so a frame out of step (a damaged or
    inserted byte mid-file) is an error naming that frame, not garbage pixels.

    ``flip`` reverses the rows of every frame while they are decoded (from
    pixels in the cache as fast as a plain copy; reading the rows last-first
    with one ``preadv`` buffer per row was twice as slow, and a reversed view
    makes later reductions slower). ``headers``, if given (``(len(out),
    header_bytes)`` uint8), receives the frame headers; ``totals``, if given
    (``len(out)`` uint64), each frame's counts, taken from the frames just
    decoded, still in the cache.
    """
    lead = segment.prefix + geometry.header_bytes  # bytes before each payload
    stride = lead + geometry.payload_bytes
    offset = geometry.offset(frame, segment.base, segment.prefix) - segment.prefix
    n, name = out.shape[0], str(segment.path)
    target = out[:, ::-1] if flip else out
    if not hasattr(reader, "read_scattered"):
        frames = _buffer("buffer", n * stride).reshape(n, stride)
        reader.read_into(offset, frames, name, frame)
        check_headers(frames[:, :lead], geometry, name, frame, segment)
        decode_frames(frames[:, lead:], geometry, target, gap, totals)
        if headers is not None:
            headers[...] = frames[:, segment.prefix : lead]
        return
    # A few frames at a time, headers read aside: the payloads land in a buffer that stays in
    # the CPU cache while they are decoded (reading 16 MB at once, then decoding it, took half
    # as long again).
    heads = _buffer("heads", n * lead).reshape(n, lead)
    per = max(1, min(MAX_SCATTER, SCATTER_BYTES // stride, n))
    payloads = _buffer("payloads", per * geometry.payload_bytes).reshape(per, geometry.payload_bytes)
    for i in range(0, n, per):
        k = min(per, n - i)
        reader.read_scattered(offset + i * stride, heads[i : i + k], payloads[:k], name, frame + i)
        decode_frames(payloads[:k], geometry, target[i : i + k], gap, None if totals is None else totals[i : i + k])
    check_headers(heads, geometry, name, frame, segment)
    if headers is not None:
        headers[...] = heads[:, segment.prefix :]


# --- lazy ----------------------------------------------------------------------


def default_chunks(
    nav_shape: tuple[int, ...], frame_shape: tuple[int, int], dtype, limit: int = CHUNK_BYTES
) -> tuple[int, ...]:
    """Whole-frame chunks of about ``limit`` bytes, split along the slowest axes."""
    frame_bytes = math.prod(frame_shape) * np.dtype(dtype).itemsize
    budget = max(1, limit // frame_bytes)  # frames per chunk
    chunks = []
    for size in reversed(nav_shape):
        step = max(1, min(size, budget))
        chunks.append(step)
        budget = max(1, budget // size)
    return tuple(reversed(chunks)) + tuple(frame_shape)


#: Most chunks a lazy array may have (the task graph lives in memory).
MAX_CHUNKS = 1_000_000
#: Smallest part of a frame worth a chunk of its own; smaller signal chunks
#: are merged, widths first (splitting a frame costs reads, never helps them).
MIN_SIGNAL_CHUNK_BYTES = 4096


def _coarsen_signal_chunks(chunks: tuple, frame: tuple[int, int], dtype, asked) -> tuple:
    """Merge signal chunks smaller than :data:`MIN_SIGNAL_CHUNK_BYTES`, with a warning."""
    rows, cols = chunks[-2:]  # the first chunk of each is the regular size
    itemsize = np.dtype(dtype).itemsize
    if rows[0] * cols[0] * itemsize >= MIN_SIGNAL_CHUNK_BYTES:
        return chunks
    cols = (frame[1],)
    if cols[0] * itemsize * rows[0] < MIN_SIGNAL_CHUNK_BYTES:
        step = min(frame[0], -(-MIN_SIGNAL_CHUNK_BYTES // (cols[0] * itemsize)))
        n = frame[0]
        rows = (step,) * (n // step) + ((n % step,) if n % step else ())
    coarse = chunks[:-2] + (rows, cols)
    warnings.warn(
        f"`chunks`={asked!r} split frames into pieces under {MIN_SIGNAL_CHUNK_BYTES} bytes; using signal "
        f"chunks of {rows[0]} x {cols[0]} pixels instead",
        MIBWarning,
        stacklevel=5,
    )
    return coarse


def _token(*args) -> str:
    from dask.base import tokenize

    return tokenize(*[repr(a) for a in args])


class _ChunkMemory:
    """Memory for lazy chunks, reused once dask has dropped a chunk.

    Fresh memory costs a kernel zero-fill on first touch, a fifth of a lazy
    reduction's time. A chunk of at least ``min_bytes`` is a view of an
    anonymous map; the map returns to the pool only when the array made on it
    has been garbage collected, and numpy keeps that array alive while any
    view of the chunk exists. At most ``keep`` idle maps of each size are
    kept; others are dropped and unmapped once their last export is gone
    (never closed while exported). Smaller chunks are plain arrays: tiny
    chunks gain nothing from reuse, and one map each would exhaust the
    process's map count.
    """

    def __init__(self, keep: int = 2, min_bytes: int = 1 << 20):
        self.keep = keep
        self.min_bytes = min_bytes
        self._idle: dict[int, list] = {}
        self._lock = threading.Lock()

    def empty(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = max(1, math.prod(shape) * dtype.itemsize)
        if nbytes < self.min_bytes:
            return np.empty(shape, dtype)
        with self._lock:
            idle = self._idle.get(nbytes)
            block = idle.pop() if idle else None
        if block is None:
            block = mmap.mmap(-1, nbytes)
            if hasattr(mmap, "MADV_HUGEPAGE"):
                block.madvise(mmap.MADV_HUGEPAGE)
        base = np.frombuffer(block, dtype=dtype, count=math.prod(shape))
        weakref.finalize(base, self._release, block, nbytes)
        return base.reshape(shape)

    def _release(self, block, nbytes: int) -> None:
        # Runs while numpy still holds its export of ``block``: closing it here
        # would raise BufferError, so a block not kept is simply let go.
        with self._lock:
            idle = self._idle.setdefault(nbytes, [])
            if len(idle) < self.keep:
                idle.append(block)


_chunk_memory = _ChunkMemory()


def read_chunk(reader: FrameReader, plan: ScanPlan, slices: tuple[slice, ...]) -> np.ndarray:
    """Read one chunk of a lazy array: the frames under its navigation slices, then its signal slice.

    Processed frames in files are read only for the chunk's rows; RAW frames
    (their rows are not separate in the file) and frames at URLs are read whole. Flipped, the
    slices are in the flipped frame, and rows are reversed while copied.
    """
    geometry, flip = reader.geometry, reader.transform.flip
    nav = len(plan.shape)
    nav_slices, (rows, cols) = slices[:nav], slices[nav:]
    if flip:  # the same rows of the file, counted from the other end
        n_rows = geometry.shape[0]
        rows = slice(n_rows - rows.stop, n_rows - rows.start)
    frames = plan.frame_numbers(nav_slices or None)
    nav_shape = tuple(s.stop - s.start for s in nav_slices)
    whole_rows, whole_cols = rows == slice(0, geometry.shape[0]), cols == slice(0, geometry.shape[1])
    # A URL's frames are read whole, headers included: a server answering another range than the
    # one asked for is then caught by the frame numbers (rows alone would be garbage unnoticed).
    remote = any(isinstance(s.path, (Remote, FileObject)) for s in reader.segments)
    if whole_rows or geometry.raw or remote:
        out = _chunk_memory.empty((frames.size,) + geometry.shape, geometry.dtype)
        reader.read(frames, out)
        if flip:
            rows = slice(geometry.shape[0] - rows.stop, geometry.shape[0] - rows.start)
    else:
        out = _chunk_memory.empty((frames.size, rows.stop - rows.start, geometry.shape[1]), geometry.dtype)
        _read_rows(reader.segments, geometry, frames, rows, out[:, ::-1] if flip else out)
        rows = slice(None)
    if not (whole_rows and whole_cols):
        out = np.ascontiguousarray(out[:, rows, cols])
    return out.reshape(nav_shape + out.shape[1:])


def read_transformed_chunk(reader: FrameReader, plan: ScanPlan, slices: tuple[slice, ...]) -> np.ndarray:
    """One chunk of a gapped or binned lazy array: its bins read whole, then its signal slice."""
    nav = len(plan.shape)
    nav_slices, (rows, cols) = slices[:nav], slices[nav:]
    groups = grouped_frames(plan.frame_numbers, nav_slices, reader.transform.bin_navigation)
    frame = reader.frame_shape
    out = np.empty((groups.shape[0],) + frame, reader.dtype)
    reader.read_groups(groups, out)
    if (rows, cols) != (slice(0, frame[0]), slice(0, frame[1])):
        out = np.ascontiguousarray(out[:, rows, cols])
    return out.reshape(tuple(s.stop - s.start for s in nav_slices) + out.shape[1:])


def _read_rows(segments: tuple[Segment, ...], geometry: Geometry, frames: np.ndarray, rows: slice, out) -> None:
    """Rows ``rows`` of processed frames into ``out`` (frames, rows, cols): one read per frame."""
    row_bytes = geometry.stored_shape[1] * geometry.file_dtype.itemsize
    firsts = [s.first for s in segments]
    buffer = _buffer("buffer", out.shape[1] * row_bytes)
    readers = {}
    try:
        for i, frame in enumerate(frames.tolist()):
            if frame < 0:  # a blank position (a lost frame, a negative sync_offset): zeros, nothing read
                out[i] = 0
                continue
            seg = bisect.bisect_right(firsts, frame) - 1
            segment = segments[seg]
            if seg not in readers:
                readers[seg] = open_reader(segment.path)
            local = frame - segment.first
            offset = (
                geometry.offset(local, segment.base, segment.prefix) + geometry.header_bytes + rows.start * row_bytes
            )
            readers[seg].read_into(offset, buffer, str(segment.path), local)
            out[i] = buffer.view(geometry.file_dtype).reshape(out.shape[1:])
    finally:
        for reader in readers.values():
            reader.close()
