"""Which frames make the scan: navigation shape, flyback frames, counters, selection.

Pure functions on numbers: the ``.hdr`` dict and arrays of per-frame evidence
(timestamps, exposures, counter fields) in, a :class:`ScanPlan` out.
Rules and their sources: docs/format.md §6 (counters), §9.3 (``.hdr`` keys),
§10 (evidence in frame headers), §11 (interrupted acquisitions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..format.hdr_file import (
    ACTIVE_COUNTERS,
    FRAMES_IN_ACQUISITION,
    FRAMES_PER_TRIGGER,
    SCAN_X,
    SCAN_Y,
    hdr_get,
    hdr_int,
)


@dataclass(frozen=True)
class Evidence:
    """Per-frame values read from the first frame headers of a file."""

    times_ns: np.ndarray | None  # None when the frame times cannot be read
    exposures_ms: np.ndarray
    counters: np.ndarray


@dataclass
class ScanPlan:
    """Which frames to read and how to shape them.

    Frame ``(y, x)`` of the scan is file frame
    ``start + offset + y * line_frames + x * step``; a stack is one line.
    """

    start: int
    stop: int
    shape: tuple[int, ...] = ()
    rule: str = ""
    details: dict = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    line_frames: int | None = None  # frames stored per scan line, flyback included
    offset: int = 0
    step: int = 1
    counter: int | None = None
    blank: int = 0  # frames before the first real one that are blank (negative sync_offset)
    sync_offset: int = 0
    # Position -> stored frame (-1: lost), when frames are placed by their numbers (placement.py);
    # the plan's numbers are then positions in the acquisition, not frames in the file.
    placement: np.ndarray | None = field(default=None, repr=False)

    @property
    def count(self) -> int:
        """Frames read."""
        return math.prod(self.shape) if self.shape else 1

    @property
    def contiguous(self) -> bool:
        return self.step == 1 and (
            self.line_frames is None or len(self.shape) < 2 or self.line_frames == self.shape[-1]
        )

    def frame_numbers(self, nav_slices: tuple[slice, ...] | None = None) -> np.ndarray:
        """Stored frames (-1: blank) at the scan positions under ``nav_slices`` (C order)."""
        frames = self.positions(nav_slices)
        if self.placement is not None:
            real = frames >= 0
            frames[real] = self.placement[frames[real]]
        return frames

    def positions(self, nav_slices: tuple[slice, ...] | None = None) -> np.ndarray:
        """Positions in the acquisition (-1: blank, before the first) under ``nav_slices`` (C order)."""
        shape = self.shape or (1,)
        slices = nav_slices if nav_slices else tuple(slice(0, n) for n in shape)
        ranges = [np.arange(s.start, s.stop, dtype=np.int64) for s in slices]
        x = ranges[-1]
        if len(shape) > 1:
            lines = np.ravel_multi_index(np.ix_(*ranges[:-1]), shape[:-1]).ravel()
            per_line = self.line_frames or shape[-1] * self.step
        else:
            lines, per_line = np.zeros(1, np.int64), 0
        frames = (self.start + self.offset + lines[:, None] * per_line + x[None, :] * self.step).ravel()
        if self.blank:  # numbers before the first real frame are blank frames: -1
            frames[frames < self.start + self.blank] = -1
        return frames


def select_frames(n_frames: int, first_frame, last_frame) -> tuple[int, int]:
    """Python-slice semantics for ``first_frame``/``last_frame`` (negatives too)."""
    for name, value in (("first_frame", first_frame), ("last_frame", last_frame)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
            raise TypeError(f"`{name}` must be an integer or None, not {type(value).__name__}")
    start, stop, _ = slice(first_frame, last_frame).indices(n_frames)
    if stop <= start:
        raise ValueError(
            f"first_frame={first_frame}, last_frame={last_frame} select no frame: the file holds {n_frames} frames"
        )
    return start, stop


def check_navigation_shape(navigation_shape) -> tuple[int, ...] | None:
    """Validate a user ``navigation_shape`` (HyperSpy order) and return it."""
    if navigation_shape is None:
        return None
    if not isinstance(navigation_shape, tuple):
        raise TypeError(
            f"`navigation_shape` must be None or a tuple such as (x, y), not {type(navigation_shape).__name__}"
        )
    if len(navigation_shape) == 0:
        raise ValueError("`navigation_shape` must not be empty")
    for value in navigation_shape:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"`navigation_shape` {navigation_shape} must hold integers, found {value!r}")
        if value <= 0:
            raise ValueError(f"`navigation_shape` {navigation_shape} must hold positive sizes")
    return tuple(int(v) for v in navigation_shape)


def scan_shape_from_hdr(hdr: dict | None, per_position: int = 1) -> tuple[tuple[int, ...] | None, str, dict]:
    """Scan shape (array order) from the ``.hdr``, with the rule that gave it.

    ScanX/ScanY (newer software) win over the frame counts; a count of zero
    means a continuous acquisition and gives no shape (docs/format.md §9.3).
    ``per_position`` frames per scan position (two counters) divide the counts.
    Returns ``(None, rule, details)`` when the counts call for header
    evidence (pixel trigger) or give nothing.
    """
    scan_x, scan_y = hdr_int(hdr, SCAN_X), hdr_int(hdr, SCAN_Y)
    if scan_x and scan_y and scan_x > 0 and scan_y > 0:
        return (scan_y, scan_x), "hdr ScanX/ScanY", {"ScanX": scan_x, "ScanY": scan_y}
    total, per_trigger = hdr_int(hdr, FRAMES_IN_ACQUISITION), hdr_int(hdr, FRAMES_PER_TRIGGER)
    details = {"frames_in_acquisition": total, "frames_per_trigger": per_trigger}
    if not total or total <= 0:
        return None, "hdr frame count missing or zero", details
    total //= per_position
    if per_trigger:
        per_trigger = max(1, per_trigger // per_position)
    if per_trigger and 1 < per_trigger < total and total % per_trigger == 0:
        # One trigger per line: frames per trigger is the scan width (§9.3).
        return (total // per_trigger, per_trigger), "hdr frames per trigger (line trigger)", details
    if per_trigger == 1:
        return None, "hdr frames per trigger is 1 (pixel trigger)", details
    return (total,), "hdr frame count", details


def line_length_from_times(times_ns: np.ndarray, total: int | None = None) -> tuple[int | None, dict]:
    """Frames per scan line from frame start times, or ``None``.

    Line changes show as frame periods clearly above the typical one. The
    threshold is the median period plus a margin from the robust spread
    (median absolute deviation) and at least 1 µs, never "above the mean": a
    10 ns jitter must not make lines (docs/format.md §10, quirk #4). The guess
    is kept only when the long periods recur exactly once per line across
    all the times given, and, when only one line change is seen, divides
    ``total`` (the frames of the acquisition).
    """
    times_ns = np.asarray(times_ns, dtype=np.int64)
    details: dict = {"frames_examined": int(times_ns.size)}
    if times_ns.size < 3:
        return None, details
    periods = np.diff(times_ns)
    median = float(np.median(periods))
    spread = float(np.median(np.abs(periods - median)))
    threshold = median + max(10 * 1.4826 * spread, 1000.0)
    long = np.flatnonzero(periods > threshold)
    details.update(median_period_ns=median, threshold_ns=threshold, line_gaps=int(long.size))
    if long.size == 0:
        return None, details
    width = int(long[0]) + 1
    expected = np.arange(width - 1, periods.size, width)
    if width < 2 or not np.array_equal(long, expected):
        details["reason"] = "long frame periods do not recur once per line"
        return None, details
    if long.size == 1 and total is not None and total % width:
        details["reason"] = (
            f"one long frame period after frame {width - 1}, and {total} frames are not whole lines of {width}"
        )
        return None, details
    details["line_length"] = width
    return width, details


def flyback_from_exposures(exposures_ms: np.ndarray) -> tuple[tuple[int, int, int] | None, dict]:
    """Frames with an outlying exposure that recur once per line (flyback frames).

    Flyback frames are exposed longer (pyxem's STEM flags, docs/format.md §10);
    exposures jitter (0.000897-0.000904 s for 0.0009 s, pyxem #634), so an
    outlier must be more than 5 % longer than the median. The outliers must
    form runs of equal length ``k`` (fewer than half the line) that start every
    ``L`` frames, seen on at least three lines.

    Returns
    -------
    ((L, first, k) or None, details)
        Frames per stored line, position of the first flyback frame in its
        line, flyback frames per line.
    """
    exposures_ms = np.asarray(exposures_ms, dtype=float)
    details: dict = {}
    if exposures_ms.size < 4:
        return None, details
    median = float(np.median(exposures_ms))
    odd = exposures_ms > 1.05 * median
    if not odd.any():
        return None, details
    if np.any(exposures_ms < 0.95 * median):
        details["reason"] = "exposures vary both ways, not a flyback pattern"
        return None, details
    edges = np.flatnonzero(np.diff(np.r_[0, odd.astype(np.int8), 0]))
    starts, ends = edges[::2], edges[1::2]
    lengths = ends - starts
    details.update(dominant_exposure_ms=median, outlier_runs=int(starts.size))
    k = int(lengths[0])
    if starts.size < 3 or not np.all(lengths[:-1] == k) or lengths[-1] > k:
        details["reason"] = "exposure outliers do not recur in equal runs"
        return None, details
    period = int(starts[1] - starts[0])
    if not np.array_equal(starts, starts[0] + period * np.arange(starts.size)) or period <= 2 * k:
        details["reason"] = "exposure outliers are not periodic"
        return None, details
    first = int(starts[0]) % period
    details.update(line_frames=period, flyback_per_line=k, flyback_position=first)
    return (period, first, k), details


def counter_pattern(counters: np.ndarray) -> tuple[list[int], dict]:
    """The repeating order of the counter field (frames of one trigger), or ``[]``.

    With both counters (or colour layers) each trigger gives one frame per
    counter, each with its own header; the order is keyed on the header's
    counter field, not assumed (docs/format.md §6).
    """
    counters = np.asarray(counters, dtype=np.int64)
    known = counters >= 0  # -1: a lost frame's position (placement.py), which any counter may fill
    values = list(dict.fromkeys(counters[known].tolist()))
    if len(values) < 2:
        return [], {"counter_values": values}
    period = len(values)
    size = counters.size - counters.size % period
    table, seen = counters[:size].reshape(-1, period), known[:size].reshape(-1, period)
    order = []
    for k in range(period):
        column = table[seen[:, k], k]
        if column.size == 0 or (column != column[0]).any():
            return [], {"counter_values": values, "reason": "counter fields do not repeat in a fixed order"}
        order.append(int(column[0]))
    if sorted(order) != sorted(values):
        return [], {"counter_values": values, "reason": "counter fields do not repeat in a fixed order"}
    return order, {"counter_order": order}


def plan_scan(
    n_frames: int,
    first_frame,
    last_frame,
    navigation_shape,
    hdr: dict | None,
    evidence=None,
    counters: str | None = None,
    infer: bool = True,
    sync_offset: int = 0,
) -> list[ScanPlan]:
    """Decide which frames to read and the navigation shape, per dataset.

    Order: explicit ``navigation_shape`` > ``.hdr`` ScanX/ScanY > ``.hdr``
    frame counts > evidence in the frame headers (line gaps in timestamps,
    flyback exposures) > a stack.

    Parameters
    ----------
    n_frames : int
        Complete frames in the file (or series).
    first_frame, last_frame : int or None
        Python-slice selection of frames.
    navigation_shape : tuple or None
        User shape in HyperSpy order ``(x, y)``.
    hdr : dict or None
        The parsed ``.hdr``.
    evidence : callable or None
        ``evidence(count)`` returns an :class:`Evidence` for (at most) the
        first ``count`` frames; called only when a rule needs it, for as few
        frames as the rule needs.
    counters : {None, "split", "join"}
        ``None`` splits by counter when the ``.hdr`` says both counters are
        active (or colour mode); ``"split"`` always splits when the counter
        fields repeat; ``"join"`` never splits.
    infer : bool
        ``False``: without ``navigation_shape`` the frames are a stack as
        stored (what ``load_mib_data`` gives, as RosettaSciIO's does), one
        frame included, and split by counter only with ``counters="split"``.
    sync_offset : int
        Applied to the selected frames before the scan is shaped: a positive
        value skips that many frames at the start, a negative one puts that
        many blank frames before the first (LiberTEM's ``sync_offset``).

    Returns
    -------
    list of ScanPlan
        One plan per dataset (counter).
    """
    start, stop = select_frames(n_frames, first_frame, last_frame)
    if isinstance(sync_offset, (bool, np.bool_)) or not isinstance(sync_offset, (int, np.integer)):
        raise TypeError(f"`sync_offset` must be an integer, not {sync_offset!r}")
    if sync_offset >= stop - start:
        raise ValueError(f"`sync_offset`={sync_offset} skips every one of the {stop - start} frames selected")
    if -sync_offset >= stop - start:  # checked on Python ints: no overflow, no allocation
        raise ValueError(
            f"`sync_offset`={sync_offset} puts {-sync_offset} blank frames before the first, as many or more than "
            f"the {stop - start} frames selected"
        )
    skip, blank = max(0, int(sync_offset)), max(0, -int(sync_offset))
    start += skip - blank  # frame numbers below start + blank are blank frames
    user = check_navigation_shape(navigation_shape)
    cache: dict = {}

    def get_evidence(count: int = n_frames) -> Evidence | None:
        if evidence is None:
            return None
        if cache.get("count", -1) < count:
            cache["count"], cache["e"] = count, evidence(count)
        return cache["e"]

    if not infer and user is None and counters is None:
        counters = "join"
    order, counter_details = _counters(hdr, counters, get_evidence)
    plans = []
    if not order and "reason" in counter_details:
        why = "`counters='split'`" if counters == "split" else "the .hdr says both counters are active"
        counter_details["split"] = False
        not_split = [
            f"{why}, but the frames are not split by counter: {counter_details['reason']}; read as one dataset"
        ]
    else:
        not_split = []
    for index, value in enumerate(order or [None]):
        plan = ScanPlan(start, stop, counter=value, offset=index, step=max(1, len(order)))
        plan.blank, plan.sync_offset = blank, int(sync_offset)
        if sync_offset:
            plan.details["sync_offset"] = int(sync_offset)
        if order or not_split:
            plan.details["counters"] = counter_details
        plan.messages.extend(not_split)
        if infer or user is not None:
            _decide(plan, n_frames, user, hdr, get_evidence, first_frame is None and last_frame is None)
        else:
            plan.rule = "frames as stored (no navigation_shape)"
            _fit(plan, None, whole=False, explicit=False)
            plan.shape = plan.shape or (1,)
        if plan.counter is not None:
            plan.rule += f"; counter {plan.counter} of every {plan.step} frames"
        plans.append(plan)
    return plans


def _counters(hdr, mode, get_evidence) -> tuple[list[int], dict]:
    if mode not in (None, "split", "join"):
        raise ValueError(f"`counters` must be None, 'split' or 'join', not {mode!r}")
    active = (hdr_get(hdr, ACTIVE_COUNTERS) or "").lower()
    chip_mode = (hdr_get(hdr, "Chip Mode") or "").upper()
    wanted = mode == "split" or (mode is None and ("both" in active or chip_mode in ("CM", "CSCM")))
    if not wanted or "alternating" in active:
        return [], {}
    found = get_evidence(64)
    if found is None:
        return [], {"reason": "the frame headers cannot be read for their counter fields"}
    order, details = counter_pattern(found.counters)
    if not order and "reason" not in details:
        details["reason"] = f"every frame header gives counter {details['counter_values']}"
    return order, details


def _decide(plan: ScanPlan, n_frames: int, user, hdr, get_evidence, no_selection: bool) -> None:
    per_position = plan.step
    selected_all = plan.start - plan.sync_offset == 0 and plan.stop == n_frames
    n_frames -= plan.sync_offset  # frames of the acquisition as the offset makes it
    if user is not None:
        scan, plan.rule = user[::-1], "navigation_shape argument"
    else:
        scan, plan.rule, details = scan_shape_from_hdr(hdr, per_position)
        plan.details.update(details)
        scan = _evidence_rules(plan, scan, hdr, n_frames, get_evidence)
    whole = selected_all and (user is not None or no_selection)
    _fit(plan, scan, whole, explicit=user is not None)


def _evidence_rules(plan: ScanPlan, scan, hdr, n_frames: int, get_evidence):
    """Apply flyback and line-gap evidence to a shape from the ``.hdr`` (or none)."""
    per_position = plan.step
    total = (hdr_int(hdr, FRAMES_IN_ACQUISITION) or n_frames) // per_position
    if plan.rule == "hdr frame count":
        # One trigger for the whole acquisition (e.g. 65536/65536, §9.3): the
        # .hdr gives no scan width, so look for one in the frame headers.
        scan = None
    pixel_trigger = scan is None and (hdr is None or "pixel trigger" in plan.rule or plan.rule == "hdr frame count")
    extra = scan is not None and plan.rule == "hdr ScanX/ScanY" and total > math.prod(scan)
    line_trigger = scan is not None and plan.rule.startswith("hdr frames per trigger")
    if per_position > 1 or not (pixel_trigger or extra or line_trigger):
        if scan is None:
            plan.rule = f"stack ({plan.rule})" if hdr else "stack (no .hdr)"
        return scan
    # Flyback evidence needs a few lines; line gaps need as many frames as we read.
    found = get_evidence(4 * total // scan[0] if scan else n_frames)
    if found is None:
        return scan
    flyback, fly_details = flyback_from_exposures(found.exposures_ms)
    if extra:
        # ScanY x (ScanX + k) frames: k flyback frames per line (rsciio #270).
        scan_y, scan_x = scan
        k = total // scan_y - scan_x if total % scan_y == 0 else 0
        if 0 < k < scan_x:
            if flyback and flyback[0] == scan_x + k and flyback[2] == k:
                position, how = flyback[1], "exposure outliers"
            else:
                # No evidence: rsciio #270 reports the extra frame at the end of the line.
                position, how = scan_x, "assumed at the end of each line (no exposure evidence)"
            _set_flyback(plan, scan_x + k, position, k, how, fly_details)
        return scan
    if scan is not None:  # a line-triggered width from the .hdr
        if flyback and flyback[0] == scan[1]:
            _set_flyback(plan, flyback[0], flyback[1], flyback[2], "exposure outliers", fly_details)
            return (scan[0], scan[1] - flyback[2])
        return scan
    if flyback:
        lines = total // flyback[0]
        if lines >= 1:
            _set_flyback(plan, flyback[0], flyback[1], flyback[2], "exposure outliers", fly_details)
            plan.rule = "frame exposures (flyback frames once per line)"
            return (lines, flyback[0] - flyback[2])
    if found.times_ns is None:
        plan.rule = "stack (frame times unreadable)"
        return None
    width, evidence = line_length_from_times(found.times_ns, total)
    plan.details["timestamps"] = evidence
    if width is not None and width < total:
        plan.rule = "frame timestamps (line gaps)"
        return (math.ceil(total / width), width)
    plan.rule = "stack (" + (evidence.get("reason") or "no line structure in the frame timestamps") + ")"
    return None


def _set_flyback(plan: ScanPlan, line_frames: int, position: int, k: int, how: str, details: dict) -> None:
    kept = line_frames - k
    if position not in (0, kept):
        return  # flyback in the middle of a line: not a layout we know
    plan.line_frames = line_frames
    plan.offset = k if position == 0 else 0
    plan.details["flyback"] = {
        "frames_per_line": k,
        "line_frames": line_frames,
        "positions_in_line": list(range(position, position + k)),
        "where": "start" if position == 0 else "end",
        "evidence": how,
        **details,
    }


def _fit(plan: ScanPlan, scan: tuple[int, ...] | None, whole: bool, explicit: bool) -> None:
    """Fit a scan shape to the frames that exist; record what is dropped."""
    span = plan.stop - plan.start
    available = _positions(span, plan.offset, plan.step)
    wanted = math.prod(scan) if scan else 0
    if scan is not None and not whole and not (plan.contiguous and span == wanted):
        # An explicit frame selection is read as it is, unless the shape fits it.
        if explicit:
            plan.messages.append(
                f"navigation_shape {scan[::-1]} needs {wanted} frames but frames "
                f"{plan.start}:{plan.stop} are {span}; loading them as a stack"
            )
        scan, plan.line_frames = None, None
        plan.offset = plan.offset if plan.step > 1 else 0
        available = _positions(span, plan.offset, plan.step)
    if scan is None:
        plan.shape = (available,) if available > 1 else ()
    elif len(scan) == 2:
        lines = _complete_lines(span, scan[1], plan)
        if lines >= scan[0]:
            plan.shape = scan
        elif lines >= 1:
            # Interrupted acquisition: keep complete lines (docs/format.md §11).
            plan.shape = (lines, scan[1])
            plan.details["frames_missing"] = wanted - available
            plan.details["incomplete_line_frames"] = available - lines * scan[1]
            plan.messages.append(
                f"interrupted acquisition: scan shape {scan[::-1]} needs {wanted} frames, the "
                f"file holds {available}; keeping {lines} complete lines, dropping the "
                f"{available - lines * scan[1]} frames of the incomplete last line"
            )
        else:
            plan.shape, plan.line_frames = ((available,) if available > 1 else ()), None
            plan.messages.append(
                f"interrupted acquisition: scan shape {scan[::-1]} needs {wanted} frames, the "
                f"file holds {available}, less than one line; loading them as a stack"
            )
    elif available >= wanted:
        plan.shape = scan
    else:
        plan.shape = (available,) if available > 1 else ()
        plan.messages.append(
            f"scan shape {scan[::-1]} needs {wanted} frames, the file holds {available}; loading them as a stack"
        )

    if plan.line_frames and len(plan.shape) == 2:
        flyback = plan.details["flyback"]
        flyback["dropped_frames"] = plan.shape[0] * flyback["frames_per_line"]
        plan.messages.append(
            f"{flyback['frames_per_line']} flyback frame(s) per line dropped at the {flyback['where']} "
            f"of each line ({flyback['dropped_frames']} in all; {flyback['evidence']})"
        )
    else:
        plan.line_frames = None
    complete = scan is not None and plan.shape == tuple(scan)  # not interrupted, not a stack
    if not explicit and len(plan.shape) > 1 and 1 in plan.shape and plan.contiguous:
        plan.shape = tuple(s for s in plan.shape if s != 1) or ()
    used = _span_of(plan)
    if whole and complete and span > used and plan.step == 1:
        plan.details["frames_after_scan"] = span - used
        plan.messages.append(
            f"the file holds {span} frames but the scan shape {scan[::-1]} uses {used}; the last "
            f"{span - used} frames are not loaded (read them with first_frame={plan.start + used})"
        )
    plan.stop = plan.start + min(span, used)


def _positions(span: int, offset: int, step: int) -> int:
    """Frames of one counter (every ``step``-th from ``offset``) within ``span``."""
    return (span - 1 - offset) // step + 1 if span > offset else 0


def _complete_lines(span: int, width: int, plan: ScanPlan) -> int:
    """Lines whose last frame, ``offset + y*L + (width-1)*step``, lies within ``span``."""
    last = plan.offset + (width - 1) * plan.step
    per_line = plan.line_frames or width * plan.step
    return (span - 1 - last) // per_line + 1 if span > last else 0


def _span_of(plan: ScanPlan) -> int:
    """Frames from ``start`` to the last frame read (or the end of its line), inclusive."""
    if plan.line_frames and len(plan.shape) == 2:
        return plan.shape[0] * plan.line_frames
    frames = plan.frame_numbers()
    return int(frames.max()) - plan.start + 1
