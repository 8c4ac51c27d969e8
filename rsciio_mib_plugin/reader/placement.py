"""Every frame at its scan position: the one its frame number says (docs/format.md §2.1, §11).

Frame numbers count up from 1 across an acquisition (and across the files of a series). When
frames are lost (a receiving PC falling behind the detector), reading the frames present in order
would put every later frame at an earlier scan position; here a lost frame leaves its position
blank instead. Pure functions on the frame numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Placement:
    """Where each frame of an acquisition goes.

    ``frame_of[p]`` is the frame (index in the file or series) at position ``p``, -1 where the
    frame was lost; ``None`` means file order (no frame lost, or numbers that cannot be trusted:
    ``note`` says why).
    """

    positions: int
    frame_of: np.ndarray | None = None
    first_number: int = 1
    lost: tuple[tuple[int, int], ...] = ()  # ranges of lost frame numbers, inclusive
    repeated: int = 0
    out_of_order: int = 0
    note: str = ""
    numbers: np.ndarray | None = field(default=None, repr=False)  # of each stored frame, when placed

    @property
    def lost_count(self) -> int:
        return sum(b - a + 1 for a, b in self.lost)

    def lost_text(self, limit: int = 10) -> str:
        """``5, 100-102`` (the first ``limit`` ranges)."""
        text = [f"{a}" if a == b else f"{a}-{b}" for a, b in self.lost[:limit]]
        return ", ".join(text) + (", ..." if len(self.lost) > limit else "")

    def messages(self) -> list[str]:
        """What a load reports: losses, repeats, order, or why the numbers are not used."""
        if self.note:
            return [f"frame numbers not used ({self.note}): the frames are read in file order"]
        out = []
        if self.lost:
            out.append(
                f"{self.lost_count} frame(s) lost during acquisition (frame numbers {self.lost_text()}): their "
                "scan positions are blank (zeros), marked in metadata.Signal.blank_positions"
            )
        if self.repeated:
            out.append(f"{self.repeated} frame(s) repeat a frame number seen before: the first copy is kept")
        if self.out_of_order:
            out.append(f"{self.out_of_order} frame(s) are stored out of order: placed by their frame numbers")
        return out


def place(numbers: np.ndarray, hdr_frames: int | None = None) -> Placement:
    """Positions of frames from their numbers (``numbers[i]`` is the number of stored frame ``i``).

    Positions count from frame number 1 when the ``.hdr`` states a frame count that holds every
    number (frames lost at the start leave blanks there), else from the lowest number. Numbers
    that cannot be trusted give file order with a note: one that does not parse, more than half
    of them repeating earlier ones, or a span beyond what the ``.hdr`` (or, without it, twice the
    frames stored) allows — so a corrupt number never asks for positions that cannot exist.
    """
    numbers = np.asarray(numbers, np.int64)
    n = numbers.size
    if n == 0:
        return Placement(0)
    if (numbers < 0).any():
        bad = int(np.argmax(numbers < 0))
        return Placement(n, first_number=int(numbers[0]), note=f"the frame number of frame {bad} is not a number")
    unique, first_index = np.unique(numbers, return_index=True)
    repeated = n - unique.size
    if 2 * repeated > n:
        return Placement(n, first_number=int(numbers[0]), note=f"{repeated} of {n} frame numbers repeat earlier ones")
    low, high = int(unique[0]), int(unique[-1])
    if hdr_frames and 1 <= low and high <= hdr_frames:
        origin, limit, allowed_by = 1, hdr_frames, f"the {hdr_frames} frames the .hdr states"
    else:
        origin = low
        limit = hdr_frames if hdr_frames and hdr_frames >= n else 2 * n
        allowed_by = f"the {limit} frames the .hdr states" if limit == hdr_frames else f"twice the {n} frames stored"
    span = high - origin + 1
    if span > limit:
        return Placement(
            n,
            first_number=int(numbers[0]),
            note=f"frame numbers run from {low} to {high} over {n} frames, more positions than {allowed_by}: "
            "they do not count up (a corrupt or renumbered frame number)",
        )
    if repeated == 0 and span == n and numbers[0] == origin and (np.diff(numbers) == 1).all():
        return Placement(n, first_number=origin)
    frame_of = np.full(span, -1, np.int64)
    frame_of[unique - origin] = first_index
    missing = np.flatnonzero(frame_of < 0)
    breaks = np.flatnonzero(np.diff(missing) != 1) + 1
    runs = [(int(r[0]) + origin, int(r[-1]) + origin) for r in np.split(missing, breaks) if r.size]
    kept = numbers[np.sort(first_index)]
    return Placement(
        span,
        frame_of,
        origin,
        lost=tuple(runs),
        repeated=int(repeated),
        out_of_order=int((np.diff(kept) < 0).sum()),
        numbers=numbers,
    )
