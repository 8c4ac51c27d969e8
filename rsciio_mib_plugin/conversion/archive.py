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

import importlib
import math
import os
import time
from pathlib import Path

import numpy as np

from ..reader.frames import FrameReader
from ..reader.load import ReadPlan, Shaping, load_datasets
from ..reader.navigator import attach, check_navigator, navigator_dict
from ..reader.preview import plot_preview
from ..reader.scan import ScanPlan
from ..sources.atomic import refuse_existing, replacing
from ..sources.source import check_path, file_stem, is_url
from .blocks import BlockPlan
from .one_pass import read_block, run_pass
from .stores import CHUNK_BYTES, Codec, archive_chunks, open_dataset, stored_bytes, write_signal

#: Frames compressed before the archive is made, to measure the compression ratio.
SAMPLE_BYTES = 8 << 20
#: Fewest bytes a chosen chunk may hold (or one whole frame, if frames are smaller): each chunk is a
#: file of a zspy archive or an HDF5 chunk, and a file per pixel would bury a disk in small files.
MIN_CHUNK_BYTES = 16 << 10
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
    navigator: str | None = "total",
    threads: int | None = None,
    progress=None,
    done=None,
    scheduler=None,
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
        so one pattern is read back by decompressing about 1 MiB. A chunk
        must hold at least :data:`MIN_CHUNK_BYTES` or a whole frame.
    overwrite : bool
        Replace existing archives; otherwise an existing one is an error,
        raised before anything is written.
    preview : bool
        Also write ``<stem>_preview.png`` (mean pattern, virtual bright field)
        from the summaries.
    navigator : {"total", "bright_field", None}, default="total"
        Store a navigator HyperSpy restores on load as ``s.navigator`` (from
        the summaries: counts per position, or counts in the bright-field
        aperture), so ``hs.load(archive, lazy=True).plot()`` reads only the
        patterns shown.
    threads : int, optional
        Workers that read, summarise and compress blocks at once (default:
        the cores this process may use, at most :data:`MAX_THREADS`).
    progress : callable, optional
        ``progress(n_bytes)`` after each block read.
    done : callable, optional
        ``done(report)`` as soon as each archive is in place (``report`` as
        returned below), e.g. to log conversions one by one.
    scheduler : str or distributed.Client, optional
        Run the pass on a ``dask.distributed`` cluster (its address, or a
        client): the blocks of every file are tasks on the workers, which read
        their frames by byte range (local paths they see, or URLs) and write
        their chunks of a zspy archive straight into it (``output_dir`` must be
        on a file system the workers share; an hspy archive's blocks come back
        to be written here). Summaries are merged exactly: the archive is the
        one an in-process conversion writes. ``threads`` is then unused.
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
    for name, value in (("shuffle", shuffle), ("overwrite", overwrite), ("preview", preview)):
        if not isinstance(value, (bool, np.bool_)):  # "no" would count as true
            raise TypeError(f"`{name}` must be True or False, not {value!r}")
    if chunks is not None:
        chunks = _checked_chunks(chunks)
    check_navigator(navigator, arrays=False)
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
        opened = time.perf_counter()
        datasets, read_plan = _open(path, dict(options))
        opening = (time.perf_counter() - opened) / len(read_plan.plans)  # counted in its archives' time
        for i, (signal, plan) in enumerate(zip(read_plan.signal_dicts(datasets), read_plan.plans)):
            counter = "" if plan.counter is None else f"_counter{plan.counter}"
            target = output_dir / f"{file_stem(path)}{counter}.{format}"
            jobs.append(Job(plan, read_plan.reader(i), signal, target, codec, chunks, opening, navigator))
    targets: dict[Path, str] = {}
    for job in jobs:  # a/scan.mib and b/scan.mib would both be scan.zspy: refused before any work
        if job.target in targets:
            raise ValueError(
                f"{targets[job.target]} and {job.reader.name} would both be written to {job.target}; "
                "convert them into different output folders"
            )
        targets[job.target] = job.reader.name
    existing = [str(job.target) for job in jobs if job.target.exists()]
    if existing and not overwrite:
        refuse_existing(*existing)
    importlib.import_module(f"rsciio.{format}")  # the writer, imported before the clocks start

    output_dir.mkdir(parents=True, exist_ok=True)
    client, ours = (None, False)
    if scheduler is not None:
        from .cluster import client_for

        client, ours = client_for(scheduler)
    try:
        if client is not None and len(jobs) > 1:
            return _run_at_once(jobs, overwrite, preview, progress, done, client)
        reports = []
        for i, job in enumerate(jobs, 1):
            run = job.run(overwrite, preview, threads, progress, client)
            reports.append({"archive": i, "archives": len(jobs)} | run)
            if done is not None:
                done(reports[-1])
        return reports
    finally:
        if ours:
            client.close()


#: Files converted at once on a cluster: each submits its blocks, so the workers always have some.
FILES_AT_ONCE = 4


def _run_at_once(jobs: list, overwrite: bool, preview: bool, progress, done, client) -> list[dict]:
    """The jobs of several files on a cluster, :data:`FILES_AT_ONCE` at a time, reported as each
    lands; the first failure stops the rest and is raised."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    reports = {}
    with ThreadPoolExecutor(min(FILES_AT_ONCE, len(jobs))) as pool:
        futures = {pool.submit(job.run, overwrite, preview, 1, progress, client): i for i, job in enumerate(jobs, 1)}
        try:
            for future in as_completed(futures):
                i = futures[future]
                reports[i] = {"archive": i, "archives": len(jobs)} | future.result()
                if done is not None:
                    done(reports[i])
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return [reports[i] for i in sorted(reports)]


def _usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _open(path, options: dict) -> tuple[list, ReadPlan]:
    """Plan the datasets of one input as ``hs.load(lazy=True)`` would (rows flipped)."""
    opening = {k: options.pop(k) for k in ("series", "storage_options") if k in options}
    return load_datasets(path, Shaping(**options, flip=True), lazy=True, **opening)


def _checked_chunks(chunks) -> tuple[int, ...]:
    if isinstance(chunks, (str, bytes)) or not hasattr(chunks, "__iter__"):
        raise TypeError(f"`chunks` must be a tuple of positive integers, one per axis, not {chunks!r}")
    chunks = tuple(chunks)
    if not chunks or not all(
        isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_)) and c >= 1 for c in chunks
    ):
        raise ValueError(f"`chunks` must be positive integers, one per axis, not {chunks!r}")
    return tuple(int(c) for c in chunks)


class Job:
    """One dataset of one input into one archive: chunks sized, the pass run into a temporary
    archive, summaries and metadata written, the archive put in place."""

    def __init__(
        self,
        plan: ScanPlan,
        reader: FrameReader,
        signal: dict,
        target: Path,
        codec: Codec,
        chunks,
        opening: float,
        navigator: str | None,
    ):
        self.plan, self.reader, self.signal, self.target, self.codec = plan, reader, signal, target, codec
        self.opening = opening  # seconds its input took to open: part of the conversion
        self.navigator = navigator
        data = signal["data"]
        self.shape, self.dtype = tuple(data.shape), np.dtype(data.dtype)
        self.nav, self.frame = self.shape[:-2], self.shape[-2:]
        self.chunks = tuple(chunks) if chunks is not None else None  # None: sized by the sampled ratio in run()
        if chunks is not None:
            if len(self.chunks) != len(self.shape):
                raise ValueError(
                    f"`chunks`={chunks!r} do not fit an array of shape {self.shape}: give {len(self.shape)}"
                )
            self.chunks = tuple(min(c, n) for c, n in zip(self.chunks, self.shape))
            chunk_bytes = math.prod(self.chunks) * self.dtype.itemsize
            if chunk_bytes < min(MIN_CHUNK_BYTES, math.prod(self.frame) * self.dtype.itemsize):
                raise ValueError(
                    f"`chunks`={chunks!r} make chunks of {chunk_bytes} bytes, a file or HDF5 chunk each: each "
                    f"must hold at least {MIN_CHUNK_BYTES >> 10} KiB or a whole frame, "
                    f"{(1,) * len(self.nav) + self.frame}"
                )
        title = signal["metadata"]["General"]["title"]
        self.group = "Experiments/" + (title.replace("/", "-") if title else "__unnamed__")

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
        sample = read_block(self.reader, self.plan, lead + (slice(0, fast),))
        per_piece = max(1, CHUNK_BYTES // frame_bytes)
        packed = sum(len(codec.encode(sample[i : i + per_piece])) for i in range(0, len(sample), per_piece))
        return sample.nbytes / max(1, packed)

    def run(self, overwrite: bool, preview: bool, threads: int, progress, client=None) -> dict:
        started = time.perf_counter() - self.opening
        if self.chunks is None:
            self.chunks = archive_chunks(self.nav, self.frame, self.dtype, self.sample_ratio())
        try:
            summaries, written = self._write(overwrite, preview, threads, progress, client)
        except OSError as err:  # a full disk, a file-size limit: one line, and nothing left behind
            if err.strerror is None or err.filename is not None:
                raise
            raise OSError(f"{self.target}: writing the archive failed: {err.strerror}; nothing was kept") from None
        seconds = time.perf_counter() - started
        raw = math.prod(self.shape) * self.dtype.itemsize
        return {
            "input": self.reader.name,
            "output": str(self.target),
            "shape": list(self.shape),
            "dtype": self.dtype.name,
            "chunks": list(self.chunks),
            "compression": f"{self.codec.compression} level {self.codec.level}",
            "bytes_read": int((self.plan.frame_numbers() >= 0).sum()) * self.reader.geometry.frame_bytes,
            "bytes_written": written,
            "ratio": raw / max(1, written),
            "seconds": seconds,
            "disc": dict(zip(("row", "col", "radius"), summaries.disc)),
        }

    def _write(self, overwrite: bool, preview: bool, threads: int, progress, client=None):
        """The archive written into a temporary and put in place: its summaries and bytes on disk."""
        blocks = BlockPlan(self.nav, self.frame, self.dtype, self.chunks)
        with replacing(self.target, overwrite, directory=self.codec.format == "zspy") as temp:
            with open_dataset(temp, self.codec, self.group, self.shape, self.chunks, self.dtype) as write:
                if client is not None:
                    from .cluster import run_pass_on_cluster

                    summaries = run_pass_on_cluster(client, self.reader, self.plan, blocks, write, progress)
                else:
                    summaries = run_pass(self.reader, self.plan, blocks, write, threads, progress)
            write_signal(temp, self.codec, self._with_navigator(summaries), summaries.metadata(self.reader.name))
            if preview:
                vbf = summaries.vbf if self.nav else None
                mean = summaries.sum_pattern / max(1, math.prod(self.nav) - summaries.blank)
                output = self.target.with_name(f"{self.target.stem}_preview.png")
                plot_preview(mean, vbf, summaries.disc, self.target.name, output)
            return summaries, stored_bytes(temp)

    def _with_navigator(self, summaries) -> dict:
        """The signal with its navigator from the summaries (none for one frame or when not asked)."""
        if self.navigator is None or not self.nav:
            return self.signal
        image = summaries.totals if self.navigator == "total" else summaries.vbf
        signal = dict(self.signal, metadata=dict(self.signal["metadata"]))
        title = signal["metadata"]["General"]["title"]
        return attach(signal, navigator_dict(image, signal["axes"], title, self.navigator))


__all__ = ["convert", "archive_chunks"]
