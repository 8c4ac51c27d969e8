"""Geometry of a ``.mib`` file: frame size, frame count, scan shape, selection.

Pure functions on numbers and header records; no file access here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import MIBFormatError, where
from .hdr import FRAMES_IN_ACQUISITION, FRAMES_PER_TRIGGER, SCAN_X, SCAN_Y, hdr_int
from .header import PROCESSED_BITS, RAW_SLOT_BITS, FrameHeader

#: Chips per quad layout and the decoded frame shape (mib-format.md §4.5, §8).
QUAD_LAYOUTS = ("2x2", "2x2G")


@dataclass(frozen=True)
class Geometry:
    """How one frame is stored and what it decodes to."""

    header_bytes: int
    payload_bytes: int
    stored_shape: tuple[int, int]  # (height, width) as the header states them
    shape: tuple[int, int]  # (rows, cols) of the decoded frame
    file_dtype: np.dtype  # big-endian pixel type in the file (uint64 words for RAW)
    dtype: np.dtype  # native dtype handed to users
    raw: bool
    depth: int | None
    layout: str

    @property
    def frame_bytes(self) -> int:
        return self.header_bytes + self.payload_bytes


def frame_geometry(header: FrameHeader, hdr_depth: int | None = None, source: str = "<buffer>") -> Geometry:
    """Frame geometry from the first header (and the ``.hdr`` depth for RAW).

    Raises
    ------
    MIBFormatError
        For RAW frames without a usable counter depth, or with a shape the
        RAW layout cannot hold.
    """
    height, width = header.height, header.width
    layout = header.layout
    if not header.raw:
        bits = PROCESSED_BITS[header.pixel_type]
        file_dtype = np.dtype(f">u{bits // 8}")
        return Geometry(
            header_bytes=header.header_bytes,
            payload_bytes=width * height * bits // 8,
            stored_shape=(height, width),
            shape=(height, width),
            file_dtype=file_dtype,
            dtype=file_dtype.newbyteorder("="),
            raw=False,
            depth=header.counter_depth,
            layout=layout,
        )

    # RAW: the frame header states the depth only in its MQ1A extension; older
    # files need the .hdr "Counter Depth" (mib-format.md §2.3, §2.4).
    depth = header.counter_depth if header.counter_depth is not None else hdr_depth
    if depth is None:
        raise MIBFormatError(
            f"{where(source, 0, 0)}: RAW (R64) frame without a counter depth: the frame "
            "header has no MQ1A extension and there is no .hdr 'Counter Depth' to use"
        )
    if depth not in RAW_SLOT_BITS:
        raise MIBFormatError(f"{where(source, 0, 0)}: RAW counter depth is {depth}, expected one of 1, 6, 12, 24")
    payload_bits = width * height * RAW_SLOT_BITS[depth]
    if payload_bits % 64:
        raise MIBFormatError(
            f"{where(source, 0, 0)}: RAW frame of {width}x{height} pixels at {depth} bit "
            "does not fill whole 64-bit words"
        )
    # 24 bit: two 12-bit planes, so the header width is twice the real one (§4.3).
    real_width = width // 2 if depth == 24 else width
    if layout in QUAD_LAYOUTS:
        # Quad RAW rows hold one row of each of the 4 chips side by side (§4.5).
        if real_width != 1024:
            raise MIBFormatError(
                f"{where(source, 0, 0)}: quad RAW frame is {width} pixels wide, expected "
                f"{2048 if depth == 24 else 1024} (four 256-pixel chips per row)"
            )
        gap = 2 if layout.endswith("G") else 0
        shape = (2 * height + gap, 512 + gap)
    elif layout == "1x1":
        shape = (height, real_width)
    else:
        raise MIBFormatError(
            f"{where(source, 0, 0)}: RAW frames with the {layout!r} layout are not "
            "supported (only 1x1, 2x2 and 2x2G; mib-format.md §4.5)"
        )
    out_bits = {1: 8, 6: 8, 12: 16, 24: 32}[depth]
    return Geometry(
        header_bytes=header.header_bytes,
        payload_bytes=payload_bits // 8,
        stored_shape=(height, width),
        shape=shape,
        file_dtype=np.dtype(">u8"),
        dtype=np.dtype(f"u{out_bits // 8}"),
        raw=True,
        depth=depth,
        layout=layout,
    )


def count_frames(size: int, geometry: Geometry, source: str = "<buffer>") -> tuple[int, int]:
    """Number of complete frames in ``size`` bytes and the bytes left over.

    A truncated last frame is left out (mib-format.md §11).
    """
    n, rest = divmod(size, geometry.frame_bytes)
    if n == 0:
        raise MIBFormatError(
            f"{source}: {size} bytes hold no complete frame: the first header states "
            f"{geometry.stored_shape[1]}x{geometry.stored_shape[0]} pixels, "
            f"{geometry.frame_bytes} bytes per frame"
        )
    return n, rest


# --- frame selection and scan shape ---------------------------------------------


def select_frames(n_frames: int, first_frame, last_frame) -> tuple[int, int]:
    """Python-slice semantics for ``first_frame``/``last_frame`` (negatives too)."""
    for name, value in (("first_frame", first_frame), ("last_frame", last_frame)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
            raise TypeError(f"`{name}` must be an integer or None, not {type(value).__name__}")
    start, stop, _ = slice(first_frame, last_frame).indices(n_frames)
    if stop <= start:
        raise ValueError(
            f"first_frame={first_frame}, last_frame={last_frame} select no frame: the "
            f"file holds {n_frames} frames"
        )
    return start, stop


def check_navigation_shape(navigation_shape) -> tuple[int, ...] | None:
    """Validate a user ``navigation_shape`` (HyperSpy order) and return it."""
    if navigation_shape is None:
        return None
    if not isinstance(navigation_shape, tuple):
        raise TypeError(
            f"`navigation_shape` must be None or a tuple such as (x, y), not "
            f"{type(navigation_shape).__name__}"
        )
    if len(navigation_shape) == 0:
        raise ValueError("`navigation_shape` must not be empty")
    for value in navigation_shape:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"`navigation_shape` {navigation_shape} must hold integers, found {value!r}")
        if value <= 0:
            raise ValueError(f"`navigation_shape` {navigation_shape} must hold positive sizes")
    return tuple(int(v) for v in navigation_shape)


@dataclass
class ScanPlan:
    """Which frames to read and how to shape them."""

    start: int
    stop: int
    shape: tuple[int, ...]  # navigation shape in array order; () for one frame
    rule: str
    details: dict = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return self.stop - self.start


def scan_shape_from_hdr(hdr: dict | None) -> tuple[tuple[int, ...] | None, str, dict]:
    """Scan shape (array order) from the ``.hdr``, with the rule that gave it.

    ScanX/ScanY (newer software) win over the frame counts; a count of zero
    means a continuous acquisition and gives no shape (mib-format.md §9.3).
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
    10 ns jitter must not make lines (mib-format.md §10, quirk #4). The guess
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
        details["reason"] = f"one long frame period after frame {width - 1}, and {total} frames are not whole lines of {width}"
        return None, details
    details["line_length"] = width
    return width, details


def plan_scan(
    n_frames: int,
    first_frame,
    last_frame,
    navigation_shape,
    hdr: dict | None,
    times_ns=None,
) -> ScanPlan:
    """Decide which frames to read and the navigation shape.

    Order: explicit ``navigation_shape`` > ``.hdr`` ScanX/ScanY > ``.hdr``
    frame counts > frame timestamps (pixel trigger) > a stack.

    Parameters
    ----------
    n_frames : int
        Complete frames in the file.
    first_frame, last_frame : int or None
        Python-slice selection of frames.
    navigation_shape : tuple or None
        User shape in HyperSpy order ``(x, y)``.
    hdr : dict or None
        The parsed ``.hdr``.
    times_ns : callable or None
        Returns frame start times in ns (first frames of the file) when
        header evidence is needed.
    """
    start, stop = select_frames(n_frames, first_frame, last_frame)
    user = check_navigation_shape(navigation_shape)
    details: dict = {}
    if user is not None:
        scan, rule = user[::-1], "navigation_shape argument"
    else:
        scan, rule, details = scan_shape_from_hdr(hdr)
        if scan is None and times_ns is not None and n_frames > 2 and (hdr is None or "pixel trigger" in rule):
            total = hdr_int(hdr, FRAMES_IN_ACQUISITION) or n_frames
            width, evidence = line_length_from_times(times_ns(), total)
            details = {**details, "timestamps": evidence}
            if width is not None and width < total:
                scan, rule = (math.ceil(total / width), width), "frame timestamps (line gaps)"
            else:
                rule = "stack (" + (evidence.get("reason") or "no line structure in the frame timestamps") + ")"
        elif scan is None:
            rule = f"stack ({rule})" if hdr else "stack (no .hdr)"
    plan = ScanPlan(start, stop, (), rule, details)
    # A frame selection given explicitly keeps every selected frame unless a
    # derived scan shape fits it exactly.
    whole = start == 0 and stop == n_frames and (user is not None or (first_frame is None and last_frame is None))
    _fit(plan, scan, whole, explicit=user is not None)
    return plan


def _fit(plan: ScanPlan, scan: tuple[int, ...] | None, whole: bool, explicit: bool) -> None:
    """Fit a scan shape to the frames that exist; record what is dropped."""
    count = plan.count
    if scan is None:
        plan.shape = (count,) if count > 1 else ()
        return
    wanted = math.prod(scan)
    if count == wanted:
        plan.shape = scan
    elif not whole:
        plan.shape = (count,) if count > 1 else ()
        if explicit:
            plan.messages.append(
                f"navigation_shape {scan[::-1]} needs {wanted} frames but frames "
                f"{plan.start}:{plan.stop} are {count}; loading them as a stack"
            )
    elif count > wanted:
        plan.stop = plan.start + wanted
        plan.shape = scan
        plan.details["frames_after_scan"] = count - wanted
        plan.messages.append(
            f"the file holds {count} frames but the scan shape {scan[::-1]} uses {wanted}; "
            f"the last {count - wanted} frames are not loaded (read them with first_frame={wanted})"
        )
    else:
        # Interrupted acquisition: keep complete lines (mib-format.md §11).
        line = math.prod(scan[1:]) if len(scan) > 1 else None
        lines = count // line if line else 0
        plan.details["frames_missing"] = wanted - count
        if lines >= 1:
            kept = lines * line
            plan.stop = plan.start + kept
            plan.shape = (lines,) + tuple(scan[1:])
            plan.details["incomplete_line_frames"] = count - kept
            plan.messages.append(
                f"interrupted acquisition: scan shape {scan[::-1]} needs {wanted} frames, the "
                f"file holds {count}; keeping {lines} complete lines, dropping the "
                f"{count - kept} frames of the incomplete last line"
            )
        else:
            plan.shape = (count,) if count > 1 else ()
            plan.messages.append(
                f"interrupted acquisition: scan shape {scan[::-1]} needs {wanted} frames, the "
                f"file holds {count}, less than one line; loading them as a stack"
            )
    if not explicit and len(plan.shape) > 1 and 1 in plan.shape:
        plan.shape = tuple(s for s in plan.shape if s != 1) or ()
