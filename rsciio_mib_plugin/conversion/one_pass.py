"""The one pass of a conversion: every block read once, summarised while in the CPU cache, written."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..reader.aperture import aperture_of, sample_positions
from ..reader.frames import FrameReader
from ..reader.scan import ScanPlan
from ..reader.transforms import grouped_frames
from .allocations import kept_allocations
from .blocks import BlockPlan
from .summaries import Summaries


def read_block(reader: FrameReader, plan: ScanPlan, nav_slices, heads=None) -> np.ndarray:
    """The output frames under ``nav_slices`` (flat along the scan); their headers into ``heads``."""
    groups = grouped_frames(plan.frame_numbers, nav_slices, reader.transform.bin_navigation)
    out = np.empty((groups.shape[0],) + reader.frame_shape, reader.dtype)
    reader.read_groups(groups, out, 1, heads)
    return out


def find_aperture(reader: FrameReader, plan: ScanPlan, nav: tuple[int, ...]) -> tuple[tuple[float, float, float], int]:
    """The bright-field aperture by the one rule every preview follows (:func:`.sample_positions`)."""
    groups = grouped_frames(plan.frame_numbers, tuple(slice(0, n) for n in nav), reader.transform.bin_navigation)
    positions = sample_positions(math.prod(nav), math.prod(reader.frame_shape) * reader.dtype.itemsize)
    sample = np.empty((positions.size,) + reader.frame_shape, reader.dtype)
    reader.read_groups(groups[positions], sample)
    return aperture_of(sample), positions.size


class BlockWork:
    """Read, summarise (piece by piece, while in the CPU cache) and write one block at a time."""

    def __init__(self, reader: FrameReader, plan: ScanPlan, blocks: BlockPlan, summaries: Summaries, write, local=None):
        self.reader, self.plan, self.blocks, self.summaries, self.write = reader, plan, blocks, summaries, write
        nav, scan = blocks.nav, plan.shape or ()
        self.index_of = np.arange(math.prod(nav)).reshape(nav) if nav else np.zeros((), int)
        self.positions = np.arange(math.prod(scan)).reshape(scan)
        self.local = local if local is not None else threading.local()  # each worker's reused block buffer

    def _position_numbers(self, source_slices):
        return self.positions if source_slices is None else self.positions[source_slices]

    def __call__(self, nav_slices) -> tuple[np.ndarray, np.ndarray, int]:
        """Process the block under ``nav_slices``: its flat output positions, its source scan
        positions and the source frames read (blank ones included)."""
        reader, plan, blocks, summaries = self.reader, self.plan, self.blocks, self.summaries
        frame, per_piece, bin_navigation = blocks.frame, blocks.per_piece, reader.transform.bin_navigation
        shape = tuple(s.stop - s.start for s in nav_slices) + frame
        buffer = getattr(self.local, "buffer", None)  # one per worker, reused: fresh memory costs page faults
        if buffer is None or buffer.size < math.prod(shape) or buffer.dtype != blocks.dtype:
            buffer = self.local.buffer = np.empty(math.prod(shape), blocks.dtype)
        block = buffer[: math.prod(shape)].reshape((-1,) + frame)
        groups = grouped_frames(plan.frame_numbers, nav_slices, bin_navigation)
        heads = np.empty((groups.size, reader.geometry.header_bytes), np.uint8)  # the headers, read on the way
        index = self.index_of[nav_slices].reshape(-1)
        per_group = groups.shape[1]
        summaries.add_blank(int((groups < 0).all(axis=1).sum()))
        for i in range(0, len(block), per_piece):  # summarised while the piece is in the CPU cache
            piece = slice(i, i + per_piece)
            reader.read_groups(groups[piece], block[piece], 1, heads[i * per_group : (i + per_piece) * per_group])
            summaries.add(index[piece], block[piece])
        where = grouped_frames(self._position_numbers, nav_slices, bin_navigation)
        summaries.add_headers(where.ravel(), groups.ravel(), heads)
        self.write(nav_slices, block.reshape(shape))
        return index, where.ravel(), groups.size


def run_pass(reader: FrameReader, plan: ScanPlan, blocks: BlockPlan, write, threads: int, progress) -> Summaries:
    """Read every block once on ``threads`` workers: summaries added piece by piece, then ``write(nav_slices, block)``.

    ``progress(n_bytes)`` after each block.
    """
    summaries = Summaries(blocks.nav, blocks.frame, blocks.dtype, plan.shape or ())
    summaries.set_disc(*find_aperture(reader, plan, blocks.nav))
    process = BlockWork(reader, plan, blocks, summaries, write)
    frame_bytes = reader.geometry.frame_bytes

    def work(nav_slices):
        frames = process(nav_slices)[2]
        if progress is not None:
            progress(frames * frame_bytes)

    parts = blocks.blocks()
    with kept_allocations():  # for the whole pass (where the environment fixed glibc's thresholds: a dask task)
        if threads > 1 and len(parts) > 1:
            with ThreadPoolExecutor(threads) as pool:
                futures = [pool.submit(work, b) for b in parts]
                try:
                    for future in futures:
                        future.result()
                except BaseException:  # an error or an interrupt: the blocks not started are not read
                    for future in futures:
                        future.cancel()
                    raise
        else:
            for b in parts:
                work(b)
    return summaries
