"""The block plan of a conversion: which output positions a worker reads, summarises and writes at once."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Output bytes one worker reads, summarises, compresses and writes at a time.
BLOCK_BYTES = 32 << 20
#: ... read and summarised this much at a time, while it is in the CPU cache.
PIECE_BYTES = 4 << 20


@dataclass(frozen=True)
class BlockPlan:
    """Blocks of whole chunks along the first scan axis, read in CPU-cache-sized pieces."""

    nav: tuple[int, ...]
    frame: tuple[int, int]
    dtype: np.dtype
    chunks: tuple[int, ...]
    block_bytes: int = BLOCK_BYTES
    piece_bytes: int = PIECE_BYTES

    @property
    def frame_bytes(self) -> int:
        return math.prod(self.frame) * np.dtype(self.dtype).itemsize

    @property
    def per_piece(self) -> int:
        """Output frames read and summarised at once."""
        return max(1, self.piece_bytes // self.frame_bytes)

    def blocks(self) -> list[tuple[slice, ...]]:
        """Navigation slices of the output, each a whole number of chunks along the first axis."""
        if not self.nav:
            return [()]
        position_bytes = self.frame_bytes * math.prod(self.nav[1:])
        step = max(1, self.block_bytes // max(1, position_bytes))
        step = max(self.chunks[0], step - step % self.chunks[0])
        rest = tuple(slice(0, n) for n in self.nav[1:])
        return [(slice(a, min(a + step, self.nav[0])),) + rest for a in range(0, self.nav[0], step)]
