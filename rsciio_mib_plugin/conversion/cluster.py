"""The one pass of a conversion on a ``dask.distributed`` cluster.

Each block of the archive is a task: a worker reads its frames by byte range
(a local path every worker sees, or a URL), summarises them as the in-process
pass does (:class:`.BlockWork`) and writes its chunks: a zspy archive's chunk
files straight into the archive's folder, which the workers must share; an
hspy archive's blocks are sent back and written by the client (one HDF5 file
has one writer). The client merges what each worker summed
(:meth:`.Summaries.merge`): integer sums and maxima, so the summaries are
exactly those of an in-process conversion, and so are the chunks.
"""

from __future__ import annotations

import threading

from ..reader.frames import FrameReader
from ..reader.scan import ScanPlan
from .allocations import kept_allocations
from .blocks import BlockPlan
from .one_pass import BlockWork, find_aperture
from .stores import ChunkFiles
from .summaries import Summaries


def client_for(scheduler):
    """``(client, ours)``: a ``distributed.Client`` for an address, or the one given (``ours``: close it)."""
    from distributed import Client

    if isinstance(scheduler, Client):
        return scheduler, False
    if not isinstance(scheduler, str):
        raise TypeError(f"`scheduler` must be a dask.distributed Client or its address, not {scheduler!r}")
    try:
        return Client(scheduler, timeout="10s"), True
    except OSError as err:
        raise ConnectionError(f"`scheduler` {scheduler}: cannot connect to a dask scheduler ({err})") from None


class _Returned:
    """A block write done by the client: the worker sends the block back (hspy)."""

    def __init__(self):
        self.blocks = []

    def __call__(self, nav_slices, block) -> None:
        self.blocks.append((nav_slices, block.copy()))


#: Each worker thread's block buffer, kept from task to task (fresh memory for every block costs
#: its page faults).
_BUFFERS = threading.local()


def _block_task(nav_slices, reader: FrameReader, plan: ScanPlan, blocks: BlockPlan, disc, write):
    summaries = Summaries(blocks.nav, blocks.frame, blocks.dtype, plan.shape or ())
    summaries.set_disc(*disc)
    writer = write if write is not None else _Returned()
    with kept_allocations():  # dask's workers fix glibc's thresholds (allocations.py)
        index, positions, frames = BlockWork(reader, plan, blocks, summaries, writer, _BUFFERS)(nav_slices)
    returned = writer.blocks if write is None else []
    return summaries.part_of(index, positions), frames, returned


def run_pass_on_cluster(client, reader: FrameReader, plan: ScanPlan, blocks: BlockPlan, write, progress) -> Summaries:
    """:func:`.run_pass` with the blocks as tasks on ``client``'s workers (``progress(n_bytes)``
    as each block lands)."""
    from distributed import as_completed

    summaries = Summaries(blocks.nav, blocks.frame, blocks.dtype, plan.shape or ())
    disc = find_aperture(reader, plan, blocks.nav)
    summaries.set_disc(*disc)
    on_workers = write if isinstance(write, ChunkFiles) else None  # zspy chunk files: written where read
    futures = client.map(
        _block_task, blocks.blocks(), reader=reader, plan=plan, blocks=blocks, disc=disc, write=on_workers, pure=False
    )
    try:
        for future in as_completed(futures):
            part, frames, returned = future.result()
            summaries.merge(part)
            for nav_slices, block in returned:
                write(nav_slices, block)
            if progress is not None:
                progress(frames * reader.geometry.frame_bytes)
    except BaseException:
        client.cancel(futures)
        raise
    return summaries
