"""Archives on disk: chunking, compression, the data set written chunk by chunk, HyperSpy's part."""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMATS = ("zspy", "hspy")
COMPRESSIONS = ("lz4", "zstd", "gzip", "none")
DEFAULT_LEVEL = {"lz4": 5, "zstd": 3, "gzip": 4, "none": 0}
#: Compressed bytes of one chunk: reading one pattern back decompresses about this much.
CHUNK_BYTES = 1 << 20
#: ... and at most this many bytes uncompressed (LZ4 undoes 16 MiB in a few ms).
MAX_CHUNK_BYTES = 16 << 20


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
        import hdf5plugin  # a dependency: its Blosc filter for lz4 and zstd

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


@contextlib.contextmanager
def open_dataset(temp: Path, codec: Codec, group: str, shape: tuple[int, ...], chunks: tuple[int, ...], dtype):
    """A function ``write(nav_slices, block)`` into a new data set ``<group>/data`` at ``temp``;
    blocks are whole chunks along the scan, and several workers may write at once."""
    if codec.format == "zspy":
        import zarr

        root = zarr.open_group(store=zarr.storage.DirectoryStore(str(temp)), mode="w")
        compressor = codec.numcodecs()
        # Flat chunk keys ("i.j.k.l", one folder): zarr reads either layout from the
        # array's metadata, and a folder per chunk costs as much as the chunk's file.
        root.require_group(group).create_dataset(
            "data",
            shape=shape,
            chunks=chunks,
            dtype=dtype,
            compressor=compressor,
            fill_value=0,
            dimension_separator=".",
        )
        yield ChunkFiles(Path(temp, *group.split("/"), "data"), codec, shape, chunks)
        return
    import h5py

    with _fail_safe(temp, "w+b") as raw, h5py.File(raw, "w") as f:
        dset = f.require_group(group).create_dataset(
            "data", shape=shape, chunks=chunks, dtype=dtype, **codec.hdf5_filter()
        )
        lock = threading.Lock()
        direct = codec.compression in ("lz4", "zstd")
        compress = codec.numcodecs() if direct else None

        def write(nav_slices, block):
            if not direct:  # HDF5 compresses, one chunk at a time, under its lock
                with lock:
                    dset[nav_slices] = block
                return
            # Compress the chunks here, in parallel, and hand HDF5 the bytes.
            for offset, chunk in chunks_of(block, nav_slices, chunks, shape):
                data = compress.encode(chunk)
                with lock:
                    dset.id.write_direct_chunk(offset, data)

        yield write


@dataclass(frozen=True)
class ChunkFiles:
    """``write(nav_slices, block)`` of a zspy data set: zarr's own chunk files (whole chunks,
    compressed bytes), written without zarr's per-chunk bookkeeping, by any number of workers at
    once, threads or the processes of a cluster sharing the folder (it pickles)."""

    folder: Path
    codec: Codec
    shape: tuple[int, ...]
    chunks: tuple[int, ...]

    def __call__(self, nav_slices, block) -> None:
        compressor = self.codec.numcodecs()
        for offset, chunk in chunks_of(block, nav_slices, self.chunks, self.shape):
            path = self.folder / ".".join(str(o // c) for o, c in zip(offset, self.chunks))
            path.write_bytes(compressor.encode(chunk) if compressor is not None else chunk.tobytes())


class _FailSafeFile(io.RawIOBase):
    """The file HDF5 writes through (h5py's file-object driver), which never reports a failed write.

    HDF5 left in the state a failed write puts it in (a full disk, a file-size
    limit) crashes the process when the file is closed (a segfault, after an
    11-line error). Here the first failed write is kept and later writes are
    skipped, so HDF5 finishes and closes normally; then the kept error is raised
    (:func:`_fail_safe`) and the unfinished archive is removed by its caller.
    """

    def __init__(self, path: Path, mode: str):
        self.path = path
        self.file = open(path, mode, buffering=0)
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def readinto(self, buffer) -> int:
        return self.file.readinto(buffer)

    def write(self, data) -> int:
        n = memoryview(data).nbytes
        if self.error is None:
            try:
                done = 0
                while done < n:
                    done += self.file.write(memoryview(data)[done:])
                return n
            except OSError as err:
                self.error = err
        self.file.seek(n, os.SEEK_CUR)
        return n

    def truncate(self, size=None) -> int:
        if self.error is None:
            try:
                return self.file.truncate(size)
            except OSError as err:
                self.error = err
        return self.tell() if size is None else size

    def close(self) -> None:
        self.file.close()
        super().close()


@contextlib.contextmanager
def _fail_safe(path: Path, mode: str):
    """A :class:`_FailSafeFile` for ``h5py.File``; the first write that failed (a full disk) is
    raised once HDF5 closed the file cleanly."""
    target = _FailSafeFile(path, mode)
    try:
        yield target
    finally:
        target.close()
    if target.error is not None:
        raise target.error


def write_signal(temp: Path, codec: Codec, signal: dict, summaries: dict | None) -> None:
    """Everything but the data set (already there) into ``temp``: axes, metadata with
    ``metadata.Summaries``, original_metadata, written by RosettaSciIO's writer from the dictionary
    ``signal.save`` would give (:func:`saved_dictionary`); an hspy archive through :func:`_fail_safe`.
    A write the writer only logs (a full disk while it writes the metadata) is raised."""
    import importlib

    info = saved_dictionary(signal, summaries)
    writer = importlib.import_module(f"rsciio.{codec.format}").file_writer
    with warnings.catch_warnings(), _raising_write_errors():
        warnings.simplefilter("ignore", FutureWarning)  # zarr's notes about its next major version
        if codec.format == "zspy":
            writer(str(temp), info, write_dataset=False)
        else:
            with _fail_safe(temp, "r+b") as raw:
                writer(raw, info, write_dataset=False)  # mode "a": the data set is kept


def saved_dictionary(signal: dict, summaries: dict | None = None) -> dict:
    """What ``dict2signal(signal).save()`` hands RosettaSciIO's writer (``s._to_dictionary()`` and
    the signal class's package), made without building the signal: HyperSpy would import the
    class's package (pyxem, seconds) to make an object that is only written out. A navigator
    (``metadata._HyperSpy._sig_navigator``) is saved as HyperSpy saves ``s.navigator``."""
    import copy

    navigator = signal["metadata"].get("_HyperSpy", {}).get("_sig_navigator")
    metadata = copy.deepcopy({k: v for k, v in signal["metadata"].items() if k != "_HyperSpy"})
    if summaries is not None:
        metadata["Summaries"] = summaries
    metadata["_HyperSpy"] = {
        "Folding": {
            "unfolded": False,
            "signal_unfolded": False,
            "original_shape": None,
            "original_axes_manager": None,
        }
    }
    if navigator is not None:
        metadata["_HyperSpy"]["_sig_navigator"] = saved_dictionary(navigator)
    axes = [
        {
            "_type": "UniformDataAxis",
            "name": axis["name"],
            "units": axis["units"],
            "navigate": axis["navigate"],
            "is_binned": False,
            "size": axis["size"],
            "scale": axis["scale"],
            "offset": axis["offset"],
        }
        for axis in signal["axes"]
    ]
    return {
        "data": signal["data"],
        "axes": axes,
        "metadata": metadata,
        "original_metadata": signal["original_metadata"],
        "learning_results": {},
        "models": {},
        "tmp_parameters": {},
        "attributes": {"_lazy": False, "ragged": False},
        "package_info": signal_package(metadata.get("Signal", {}).get("signal_type", ""), len(signal["data"].shape)),
    }


def signal_package(signal_type: str, ndim: int) -> dict:
    """``package_info`` of the class HyperSpy gives a 2-D signal of ``signal_type`` (pyxem's for
    ``electron_diffraction`` when pyxem is installed), found in HyperSpy's extension registry
    without importing the package."""
    from importlib.metadata import PackageNotFoundError, version

    from hyperspy.extensions import ALL_EXTENSIONS

    package = "hyperspy"
    for spec in ALL_EXTENSIONS["signals"].values():
        names = [spec.get("signal_type")] + list(spec.get("signal_type_aliases") or [])
        if signal_type in names and spec.get("signal_dimension") == 2 and spec.get("dtype") == "real":
            if not spec.get("lazy") and ndim >= 2:
                package = spec["module"].split(".")[0]
                break
    try:
        return {"package": package, "package_version": version(package)}
    except PackageNotFoundError:
        return {"package": package, "package_version": ""}


class _WriteErrors(logging.Handler):
    """OS errors RosettaSciIO's writer logs and goes on after (a full disk while writing attributes)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.errors: list[OSError] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and isinstance(record.exc_info[1], OSError):
            self.errors.append(record.exc_info[1])


@contextlib.contextmanager
def _raising_write_errors():
    """Raise the first OS error the writer logged (its 20-line log record is not shown)."""
    logger = logging.getLogger("rsciio._hierarchical")
    handler, propagate = _WriteErrors(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    if handler.errors:
        raise handler.errors[0]


def chunks_of(block: np.ndarray, nav_slices, chunks: tuple[int, ...], shape: tuple[int, ...]):
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


def stored_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size
