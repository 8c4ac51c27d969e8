"""Facility conversion: ``.mib`` acquisitions to compressed, frame-addressable archives.

One pass over the pixels: blocks of whole frames are read (through the same
reader as ``hs.load``, rows in the Merlin display orientation, gapped and
binned as asked), their summaries accumulated (mean and maximum pattern,
total counts per frame, a virtual bright-field image) and their chunks
compressed and written, on ``threads`` workers at once. The archive is the
layout HyperSpy's own zspy (zarr) and hspy (HDF5) writers make: the data set
is written here, HyperSpy writes the rest (axes, metadata, original_metadata,
and the summaries under ``metadata.Summaries``), and ``hs.load`` reads it.
Everything is written under a temporary name beside the output and renamed
at the end, so an interrupted conversion leaves no archive that looks whole.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MIBFormatError, MIBWarning
from ..format.frame_header import parse_evidence
from ..reader.frames import FrameReader
from ..reader.load import ReadPlan, Shaping, load_datasets
from ..reader.preview import aperture_of, disc_mask, plot_preview, sample_positions
from ..reader.transforms import grouped_frames
from ..sources.atomic import replacing
from ..sources.source import check_path, is_url

FORMATS = ("zspy", "hspy")
COMPRESSIONS = ("lz4", "zstd", "gzip", "none")
DEFAULT_LEVEL = {"lz4": 5, "zstd": 3, "gzip": 4, "none": 0}
#: Compressed bytes of one chunk: reading one pattern back decompresses about this much.
CHUNK_BYTES = 1 << 20
#: ... and at most this many bytes uncompressed (LZ4 undoes 16 MiB in a few ms).
MAX_CHUNK_BYTES = 16 << 20
#: Frames compressed before the archive is made, to measure the compression ratio.
SAMPLE_BYTES = 8 << 20
#: Output bytes one worker reads, summarises, compresses and writes at a time.
BLOCK_BYTES = 32 << 20
#: ... read and summarised this much at a time, while it is in the CPU cache.
PIECE_BYTES = 4 << 20
#: Most workers by default: each holds a block (``BLOCK_BYTES``), and a few keep a disk busy.
MAX_THREADS = 8

READ_OPTIONS = (
    "navigation_shape",
    "first_frame",
    "last_frame",
    "sync_offset",
    "quad_gap",
    "bin_signal",
    "bin_navigation",
    "series",
    "counters",
    "storage_options",
)


def convert(
    inputs,
    output_dir,
    *,
    format: str = "zspy",
    compression: str = "lz4",
    level: int | None = None,
    shuffle: bool = True,
    chunks: tuple[int, ...] | None = None,
    overwrite: bool = False,
    preview: bool = False,
    threads: int | None = None,
    progress=None,
    done=None,
    **read_options,
) -> list[dict]:
    """Convert ``.mib`` files into compressed zspy or hspy archives, with summaries.

    Parameters
    ----------
    inputs : str, pathlib.Path, URL or a list of them
        The ``.mib`` files (or captures), local or fsspec URLs (with
        ``storage_options``). Every one is opened and checked before anything
        is written.
    output_dir : str or pathlib.Path
        Folder for the archives, ``<stem>.zspy`` / ``<stem>.hspy`` (one per
        counter, ``<stem>_counter<N>``, when the counters are split).
    format : {"zspy", "hspy"}
        zarr (HyperSpy zspy) or HDF5 (HyperSpy hspy) archives.
    compression : {"lz4", "zstd", "gzip", "none"}
        Blosc LZ4 or Zstandard (numcodecs for zspy, hdf5plugin's Blosc filter
        for hspy), zlib/gzip, or none.
    level : int, optional
        Compression level (default 5 for lz4, 3 for zstd, 4 for gzip).
    shuffle : bool
        Bit-shuffle before Blosc compression (byte shuffle for gzip).
    chunks : tuple of int, optional
        Chunks of the stored array. Default: whole frames along the fastest
        scan axis, as many as compress to about 1 MiB (:func:`archive_chunks`),
        so one pattern is read back by decompressing about 1 MiB.
    overwrite : bool
        Replace existing archives; otherwise an existing one is an error,
        raised before anything is written.
    preview : bool
        Also write ``<stem>_preview.png`` (mean pattern, virtual bright field)
        from the summaries.
    threads : int, optional
        Workers that read, summarise and compress blocks at once (default:
        the cores this process may use, at most :data:`MAX_THREADS`).
    progress : callable, optional
        ``progress(n_bytes)`` after each block read.
    done : callable, optional
        ``done(report)`` as soon as each archive is in place (``report`` as
        returned below), e.g. to log conversions one by one.
    **read_options
        ``navigation_shape``, ``first_frame``, ``last_frame``,
        ``sync_offset``, ``quad_gap``, ``bin_signal``, ``bin_navigation``,
        ``series``, ``counters``, ``storage_options``, as for :func:`file_reader`.

    Returns
    -------
    list of dict
        One report per archive: its number and the number of archives, input,
        output, shape, dtype, chunks, bytes read and written, seconds,
        compression ratio, the summaries' disc.
    """
    unknown = set(read_options) - set(READ_OPTIONS)
    if unknown:
        raise TypeError(f"convert() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    codec = Codec.make(format, compression, level, shuffle)
    if threads is None:
        threads = min(MAX_THREADS, _usable_cores())
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"`threads` must be a positive integer, not {threads!r}")
    paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not paths:
        raise ValueError("`inputs` is empty: name at least one .mib file")
    output_dir = Path(output_dir)
    options = {k: v for k, v in read_options.items() if v is not None}
    jobs = []
    for path in [p if is_url(p) else check_path(p) for p in paths]:  # every input opens before anything is written
        datasets, read_plan = _open(path, dict(options))
        for i, (signal, plan) in enumerate(zip(read_plan.signal_dicts(datasets), read_plan.plans)):
            counter = "" if plan.counter is None else f"_counter{plan.counter}"
            target = output_dir / f"{Path(path).stem}{counter}.{format}"
            jobs.append(Job(read_plan.prop, plan, read_plan.reader(i), signal, target, codec, chunks))
    existing = [str(job.target) for job in jobs if job.target.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"not overwriting {', '.join(existing)} (use overwrite=True, or --overwrite)")
    import hyperspy.io  # noqa: F401  - imported before the clocks start

    output_dir.mkdir(parents=True, exist_ok=True)
    reports = []
    for i, job in enumerate(jobs, 1):
        reports.append({"archive": i, "archives": len(jobs)} | job.run(overwrite, preview, threads, progress))
        if done is not None:
            done(reports[-1])
    return reports


def _usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _open(path, options: dict) -> tuple[list, ReadPlan]:
    """Plan the datasets of one input as ``hs.load(lazy=True)`` would (rows flipped)."""
    opening = {k: options.pop(k) for k in ("series", "storage_options") if k in options}
    return load_datasets(path, Shaping(**options, flip=True), lazy=True, **opening)


@dataclass(frozen=True)
class Codec:
    """How chunks are compressed, for zarr (numcodecs) or HDF5 (filters)."""

    format: str
    compression: str
    level: int
    shuffle: bool

    @classmethod
    def make(cls, format, compression, level, shuffle) -> Codec:
        if format not in FORMATS:
            raise ValueError(f"`format` must be one of {', '.join(FORMATS)}, not {format!r}")
        if compression not in COMPRESSIONS:
            raise ValueError(f"`compression` must be one of {', '.join(COMPRESSIONS)}, not {compression!r}")
        level = DEFAULT_LEVEL[compression] if level is None else level
        top = 9
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= top:
            raise ValueError(f"`level` must be an integer from 0 to {top}, not {level!r}")
        codec = cls(format, compression, level, bool(shuffle))
        if format == "hspy" and compression in ("lz4", "zstd"):
            codec.hdf5_filter()  # fails now, with what to install, rather than after reading
        return codec

    def numcodecs(self):
        """The numcodecs codec for zarr, or for compressing HDF5 chunks directly."""
        import numcodecs

        if self.compression in ("lz4", "zstd"):
            shuffle = numcodecs.Blosc.BITSHUFFLE if self.shuffle else numcodecs.Blosc.NOSHUFFLE
            return numcodecs.Blosc(cname=self.compression, clevel=self.level, shuffle=shuffle)
        if self.compression == "gzip":
            return numcodecs.GZip(level=self.level)
        return None

    def hdf5_filter(self) -> dict:
        """``h5py.create_dataset`` keywords for the filter."""
        if self.compression == "gzip":
            return {"compression": "gzip", "compression_opts": self.level, "shuffle": self.shuffle}
        if self.compression == "none":
            return {}
        try:
            import hdf5plugin
        except ImportError:
            raise ImportError(
                f"hspy archives with {self.compression} compression need hdf5plugin's Blosc filter: "
                "pip install hdf5plugin (or use --compression gzip, or --format zspy)",
                name="hdf5plugin",
            ) from None
        shuffle = hdf5plugin.Blosc.BITSHUFFLE if self.shuffle else hdf5plugin.Blosc.NOSHUFFLE
        return dict(hdf5plugin.Blosc(cname=self.compression, clevel=self.level, shuffle=shuffle))


def archive_chunks(nav: tuple[int, ...], frame: tuple[int, int], dtype, ratio: float = 1.0) -> tuple[int, ...]:
    """Whole frames, as many along the fastest scan axis as compress to :data:`CHUNK_BYTES`
    at ``ratio`` (at most :data:`MAX_CHUNK_BYTES` uncompressed).

    Fewer, larger chunks are fewer files: creating a chunk file cost about
    0.7 ms here, more than compressing it.
    """
    frame_bytes = math.prod(frame) * np.dtype(dtype).itemsize
    if not nav:
        return tuple(frame)
    budget = min(MAX_CHUNK_BYTES, CHUNK_BYTES * max(1.0, ratio))
    most = max(1, min(nav[-1], int(budget // frame_bytes)))
    fast = -(-nav[-1] // -(-nav[-1] // most))  # as even as can be: no chunk mostly padding
    return (1,) * (len(nav) - 1) + (fast,) + tuple(frame)


@dataclass
class Summaries:
    """What people look at first, accumulated piece by piece (each thread adds into its own sums)."""

    nav: tuple[int, ...]
    frame: tuple[int, int]
    dtype: np.dtype
    scan: tuple[int, ...] = ()  # the source scan (before binning): times and exposures
    totals: np.ndarray = field(init=False)
    vbf: np.ndarray = field(init=False)
    times: np.ndarray = field(init=False)
    exposures: np.ndarray = field(init=False)
    unreadable: list = field(default_factory=list)  # (frame, reason) of headers without time or exposure
    disc: tuple[float, float, float] | None = None
    disc_frames: int = 0
    aperture: tuple[slice, slice, np.ndarray] | None = None
    parts: list = field(default_factory=list)  # [pattern sum, pattern max] of each thread
    local: threading.local = field(default_factory=threading.local)

    def __post_init__(self):
        self.totals = np.zeros(self.nav, np.uint64)
        self.vbf = np.zeros(self.nav, np.uint64)
        self.times = np.full(self.scan, -1, np.int64)
        self.exposures = np.full(self.scan, np.nan)

    def add_headers(self, positions: np.ndarray, frames: np.ndarray, heads: np.ndarray) -> None:
        """Times and exposures of the frame headers ``heads`` (frames ``frames`` at source scan ``positions``)."""
        real = frames >= 0
        if real.any():
            headers = np.ascontiguousarray(heads[real]).view(f"S{heads.shape[1]}").ravel()
            times, exposures = _times_and_exposures(headers, frames[real], self.unreadable)
            self.times.reshape(-1)[positions[real]] = times
            self.exposures.reshape(-1)[positions[real]] = exposures

    def set_disc(self, disc: tuple[float, float, float], frames: int) -> None:
        """The bright-field aperture (found in the mean of ``frames`` frames, :func:`.aperture_of`)."""
        self.disc, self.disc_frames = disc, frames
        self.aperture = _bounding_box(disc_mask(self.frame, self.disc))

    def add(self, index: np.ndarray, frames: np.ndarray) -> None:
        """Add ``frames`` at flat scan positions ``index`` (after :meth:`set_disc`)."""
        part = getattr(self.local, "part", None)
        if part is None:
            part = self.local.part = [np.zeros(self.frame, np.uint64), np.zeros(self.frame, self.dtype)]
            self.parts.append(part)
        flat = frames.reshape(frames.shape[0], -1)
        pattern_max = frames.max(axis=0)
        np.maximum(part[1], pattern_max, out=part[1])
        # Integer sums in the frames' own type are the fast ones: add as many values as cannot
        # overflow it (4095-count frames: 16 at a time in uint16), then the partial sums wide.
        top = max(1, int(pattern_max.max()))
        group = np.iinfo(frames.dtype).max // top if frames.dtype.kind == "u" else 1
        np.add(part[0], _grouped_sum(flat, 0, group, np.uint64).reshape(self.frame), out=part[0])
        self.totals.reshape(-1)[index] = _grouped_sum(flat, 1, group, np.uint64)
        rows, cols, mask = self.aperture
        self.vbf.reshape(-1)[index] = np.einsum(
            "nij,ij->n", frames[:, rows, cols], mask.astype(frames.dtype), dtype=np.uint64
        )

    @property
    def sum_pattern(self) -> np.ndarray:
        return sum((p[0] for p in self.parts), np.zeros(self.frame, np.uint64))

    @property
    def max_pattern(self) -> np.ndarray:
        return np.maximum.reduce([p[1] for p in self.parts] or [np.zeros(self.frame, self.dtype)])


def _grouped_sum(a: np.ndarray, axis: int, group: int, wide) -> np.ndarray:
    """Sum the 2-D ``a`` along ``axis``: runs of ``group`` values in ``a``'s own type, then in ``wide``.

    Along the rows (``axis=1``) the runs are taken a row's length apart, so that
    both stages add whole contiguous rows: numpy's reduction along a short
    contiguous axis, converting as it goes, ran ten times slower here.
    """
    length = a.shape[axis]
    group = min(group, length)
    if axis == 1:
        group = next(g for g in range(min(group, 64), 0, -1) if length % g == 0)
        if group == 1:
            return a.sum(axis=1, dtype=wide)
        return a.reshape(a.shape[0], group, -1).sum(axis=1, dtype=a.dtype).sum(axis=1, dtype=wide)
    if group <= 1:
        return a.sum(axis=0, dtype=wide)
    whole = length - length % group
    parts = a[:whole].reshape(whole // group, group, -1).sum(axis=1, dtype=a.dtype).sum(axis=0, dtype=wide)
    return parts + a[whole:].sum(axis=0, dtype=wide)


class Job:
    """One dataset of one input into one archive."""

    def __init__(self, prop, plan, reader: FrameReader, signal: dict, target: Path, codec: Codec, chunks):
        self.prop, self.plan, self.reader, self.transform = prop, plan, reader, reader.transform
        self.signal, self.target, self.codec = signal, target, codec
        data = signal["data"]
        self.shape, self.dtype = tuple(data.shape), np.dtype(data.dtype)
        self.nav, self.frame = self.shape[:-2], self.shape[-2:]
        self.chunks = tuple(chunks) if chunks is not None else None  # None: sized by the sampled ratio in run()
        if chunks is not None:
            if len(self.chunks) != len(self.shape) or min(self.chunks) < 1:
                raise ValueError(f"`chunks`={chunks!r} do not fit an array of shape {self.shape}")
            self.chunks = tuple(min(c, n) for c, n in zip(self.chunks, self.shape))
        title = signal["metadata"]["General"]["title"]
        self.group = "Experiments/" + (title.replace("/", "-") if title else "__unnamed__")

    # --- the pass ---------------------------------------------------------------------

    def blocks(self) -> list[tuple[slice, ...]]:
        """Navigation slices of the output, each a whole number of chunks along the first axis."""
        if not self.nav:
            return [()]
        position_bytes = math.prod(self.frame) * self.dtype.itemsize * math.prod(self.nav[1:])
        step = max(1, BLOCK_BYTES // max(1, position_bytes))
        step = max(self.chunks[0], step - step % self.chunks[0])
        rest = tuple(slice(0, n) for n in self.nav[1:])
        return [(slice(a, min(a + step, self.nav[0])),) + rest for a in range(0, self.nav[0], step)]

    def read_groups(self, groups: np.ndarray, out: np.ndarray, heads: np.ndarray | None = None) -> None:
        """The output frames of ``groups`` (source frames per output position) into ``out``, their headers
        into ``heads``."""
        self.reader.read_groups(groups, out, 1, heads)

    def read_block(self, nav_slices) -> np.ndarray:
        """The output frames under ``nav_slices``, flat along the scan."""
        groups = grouped_frames(self.plan.frame_numbers, nav_slices, self.transform.bin_navigation)
        out = np.empty((groups.shape[0],) + self.frame, self.dtype)
        self.read_groups(groups, out)
        return out

    def find_aperture(self) -> tuple[tuple[float, float, float], int]:
        """The bright-field aperture by the one rule every preview follows (:func:`.sample_positions`)."""
        nav = self.nav or (1,)
        everywhere = tuple(slice(0, n) for n in self.nav)
        groups = grouped_frames(self.plan.frame_numbers, everywhere, self.transform.bin_navigation)
        positions = sample_positions(math.prod(nav), math.prod(self.frame) * self.dtype.itemsize)
        sample = np.empty((positions.size,) + self.frame, self.dtype)
        self.read_groups(groups[positions], sample)
        return aperture_of(sample), positions.size

    def sample_ratio(self) -> float:
        """Compression ratio of the first frames (up to :data:`SAMPLE_BYTES`), compressed in 1 MiB pieces."""
        codec = self.codec.numcodecs()
        if codec is None or not self.nav:
            return 1.0
        frame_bytes = math.prod(self.frame) * self.dtype.itemsize
        want = max(1, SAMPLE_BYTES // frame_bytes)
        fast = min(self.nav[-1], want)
        slow = min(math.prod(self.nav[:-1]), max(1, want // fast))
        lead = tuple(slice(0, 1) for _ in self.nav[:-2]) + ((slice(0, slow),) if len(self.nav) > 1 else ())
        sample = self.read_block(lead + (slice(0, fast),))
        per_piece = max(1, CHUNK_BYTES // frame_bytes)
        packed = sum(len(codec.encode(sample[i : i + per_piece])) for i in range(0, len(sample), per_piece))
        return sample.nbytes / max(1, packed)

    def run(self, overwrite: bool, preview: bool, threads: int, progress) -> dict:
        started = time.perf_counter()
        if self.chunks is None:
            self.chunks = archive_chunks(self.nav, self.frame, self.dtype, self.sample_ratio())
        with replacing(self.target, overwrite, directory=self.codec.format == "zspy") as temp:
            with self.dataset(temp) as write:
                summaries = self.run_pass(write, threads, progress)
            self.finish(temp, summaries)
            if preview:
                vbf = summaries.vbf if self.nav else None
                mean = summaries.sum_pattern / max(1, math.prod(self.nav))
                plot_preview(
                    mean,
                    vbf,
                    summaries.disc,
                    self.target.name,
                    self.target.with_name(f"{self.target.stem}_preview.png"),
                )
            written = _size(temp)
        seconds = time.perf_counter() - started
        raw = math.prod(self.shape) * self.dtype.itemsize
        return {
            "input": str(self.prop.source.name),
            "output": str(self.target),
            "shape": list(self.shape),
            "dtype": self.dtype.name,
            "chunks": list(self.chunks),
            "compression": f"{self.codec.compression} level {self.codec.level}",
            "bytes_read": int((self.plan.frame_numbers() >= 0).sum()) * self.prop.geometry.frame_bytes,
            "bytes_written": written,
            "ratio": raw / max(1, written),
            "seconds": seconds,
            "disc": dict(zip(("row", "col", "radius"), summaries.disc)),
        }

    def run_pass(self, write, threads: int, progress) -> Summaries:
        scan = self.plan.shape or ()
        summaries = Summaries(self.nav, self.frame, self.dtype, scan)
        blocks = self.blocks()
        index_of = np.arange(math.prod(self.nav)).reshape(self.nav) if self.nav else np.zeros((), int)
        positions = np.arange(math.prod(scan)).reshape(scan)

        def position_numbers(source_slices):
            return positions if source_slices is None else positions[source_slices]

        frame_bytes = math.prod(self.frame) * self.dtype.itemsize
        per_piece = max(1, PIECE_BYTES // frame_bytes)
        header_bytes = self.prop.geometry.header_bytes
        local = threading.local()

        summaries.set_disc(*self.find_aperture())

        def work(nav_slices):
            shape = tuple(s.stop - s.start for s in nav_slices) + self.frame
            buffer = getattr(local, "buffer", None)  # one per worker, reused: fresh memory costs page faults
            if buffer is None or buffer.size < math.prod(shape):
                buffer = local.buffer = np.empty(math.prod(shape), self.dtype)
            block = buffer[: math.prod(shape)].reshape((-1,) + self.frame)
            groups = grouped_frames(self.plan.frame_numbers, nav_slices, self.transform.bin_navigation)
            heads = np.empty((groups.size, header_bytes), np.uint8)  # the headers, read on the way
            index = index_of[nav_slices].reshape(-1)
            per_group = groups.shape[1]
            for i in range(0, len(block), per_piece):  # summarised while the piece is in the CPU cache
                piece = slice(i, i + per_piece)
                self.read_groups(groups[piece], block[piece], heads[i * per_group : (i + per_piece) * per_group])
                summaries.add(index[piece], block[piece])
            where = grouped_frames(position_numbers, nav_slices, self.transform.bin_navigation)
            summaries.add_headers(where.ravel(), groups.ravel(), heads)
            write(nav_slices, block.reshape(shape))
            if progress is not None:
                progress(groups.size * self.prop.geometry.frame_bytes)

        if threads > 1 and len(blocks) > 1:
            with ThreadPoolExecutor(threads) as pool:
                for future in [pool.submit(work, b) for b in blocks]:
                    future.result()
        else:
            for b in blocks:
                work(b)
        return summaries

    # --- the archive ---------------------------------------------------------------------

    @contextlib.contextmanager
    def dataset(self, temp: Path):
        """A function ``write(nav_slices, block)`` into a new data set at ``temp``."""
        if self.codec.format == "zspy":
            import zarr

            root = zarr.open_group(store=zarr.storage.DirectoryStore(str(temp)), mode="w")
            compressor = self.codec.numcodecs()
            # Flat chunk keys ("i.j.k.l", one folder): zarr reads either layout from the
            # array's metadata, and a folder per chunk costs as much as the chunk's file.
            root.require_group(self.group).create_dataset(
                "data",
                shape=self.shape,
                chunks=self.chunks,
                dtype=self.dtype,
                compressor=compressor,
                fill_value=0,
                dimension_separator=".",
            )
            folder = Path(temp, *self.group.split("/"), "data")

            def write(nav_slices, block):
                # zarr's own chunk files (whole chunks, compressed bytes), written here without
                # zarr's per-chunk bookkeeping, on every worker at once
                for offset, chunk in _chunks_of(block, nav_slices, self.chunks, self.shape):
                    path = folder / ".".join(str(o // c) for o, c in zip(offset, self.chunks))
                    path.write_bytes(compressor.encode(chunk) if compressor is not None else chunk.tobytes())

            yield write
            return
        import h5py

        with h5py.File(temp, "w") as f:
            dset = f.require_group(self.group).create_dataset(
                "data", shape=self.shape, chunks=self.chunks, dtype=self.dtype, **self.codec.hdf5_filter()
            )
            lock = threading.Lock()
            direct = self.codec.compression in ("lz4", "zstd")
            codec = self.codec.numcodecs() if direct else None

            def write(nav_slices, block):
                if not direct:  # HDF5 compresses, one chunk at a time, under its lock
                    with lock:
                        dset[nav_slices] = block
                    return
                # Compress the chunks here, in parallel, and hand HDF5 the bytes.
                for offset, chunk in _chunks_of(block, nav_slices, self.chunks, self.shape):
                    data = codec.encode(chunk)
                    with lock:
                        dset.id.write_direct_chunk(offset, data)

            yield write

    def finish(self, temp: Path, summaries: Summaries) -> None:
        """HyperSpy writes everything but the data set (already there) into ``temp``."""
        from hyperspy.io import dict2signal

        nav_size = max(1, math.prod(self.nav))
        times, exposures = summaries.times, summaries.exposures
        if summaries.unreadable:
            unreadable = sorted(summaries.unreadable)
            listed = ", ".join(str(f) for f, _ in unreadable[:5]) + (", ..." if len(unreadable) > 5 else "")
            warnings.warn(
                f"{self.prop.source.name}: the time or exposure of {len(unreadable)} frame(s) ({listed}) cannot be "
                f"read ({unreadable[0][1]}); Summaries hold -1 and NaN for them",
                MIBWarning,
                stacklevel=4,
            )
        signal = dict2signal(self.signal, lazy=True)
        signal.metadata.set_item(
            "Summaries",
            {
                "mean_pattern": (summaries.sum_pattern / nav_size).astype(np.float32),
                "max_pattern": summaries.max_pattern,
                # one frame: arrays of one value (HyperSpy's writers cannot store 0-d arrays)
                "frame_totals": np.atleast_1d(summaries.totals),
                "virtual_bright_field": {
                    "image": np.atleast_1d(summaries.vbf),
                    "centre_row": summaries.disc[0],
                    "centre_col": summaries.disc[1],
                    "radius": summaries.disc[2],
                    "aperture_from": f"the mean pattern of {summaries.disc_frames} frames spread evenly over the scan",
                },
                "frame_start_times_ns": np.atleast_1d(times),
                "frame_exposures_ms": np.atleast_1d(exposures),
                "note": "times and exposures of the frames read, in scan order (before binning); -1 and NaN where "
                "unknown (blank frames, frames left out of the bins, headers that do not say)",
            },
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # zarr's notes about its next major version
            signal.save(temp, write_dataset=False, overwrite=True, file_format=self.codec.format.upper())


def _times_and_exposures(headers: np.ndarray, numbers: np.ndarray, unreadable: list) -> tuple:
    """Times (ns, -1 unknown) and exposures (ms, NaN unknown) of ``headers`` (frames ``numbers``).

    When any header is malformed, or any time unreadable, each is parsed on its
    own: the malformed ones are added to ``unreadable`` as ``(frame number,
    reason)``, the others keep what they say.
    """
    try:
        stamps, ms, _ = parse_evidence(headers)
        if stamps is not None or len(headers) == 1:
            return (-1 if stamps is None else stamps), ms
    except MIBFormatError:
        pass
    times, exposures = np.full(len(headers), -1, np.int64), np.full(len(headers), np.nan)
    for j, number in enumerate(numbers.tolist()):
        try:
            stamps, ms, _ = parse_evidence(headers[j : j + 1], number)
        except MIBFormatError as err:
            unreadable.append((number, str(err)))
            continue
        times[j] = -1 if stamps is None else stamps[0]
        exposures[j] = ms[0]
    return times, exposures


def _bounding_box(mask: np.ndarray) -> tuple[slice, slice, np.ndarray]:
    """Rows and columns around the True pixels of ``mask``, and the mask there."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return slice(0, 0), slice(0, 0), mask[:0, :0]
    box = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    return box[0], box[1], mask[box]


def _chunks_of(block: np.ndarray, nav_slices, chunks: tuple[int, ...], shape: tuple[int, ...]):
    """``(chunk offset, full-size chunk)`` for every chunk of a chunk-aligned block (edges zero-padded)."""
    starts = [s.start for s in nav_slices] + [0, 0]
    grid = [range(0, n, c) for n, c in zip(block.shape, chunks)]
    for corner in np.ndindex(*[len(g) for g in grid]):
        lo = [g[i] for g, i in zip(grid, corner)]
        piece = block[tuple(slice(a, a + c) for a, c in zip(lo, chunks))]
        if piece.shape != chunks:
            full = np.zeros(chunks, block.dtype)
            full[tuple(slice(0, n) for n in piece.shape)] = piece
            piece = full
        yield tuple(a + s for a, s in zip(lo, starts)), np.ascontiguousarray(piece)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


__all__ = ["convert", "archive_chunks"]
