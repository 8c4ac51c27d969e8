"""What the command line prints: one-line errors and warnings, ``info`` reports."""

from __future__ import annotations

import sys
import warnings


def clean(text: str) -> str:
    """Text from files made safe for a terminal: control characters escaped (newlines kept)."""
    return "\n".join(
        "".join(c if c.isprintable() or c == "\t" else repr(c)[1:-1] for c in line) for line in str(text).split("\n")
    )


def error(command: str, message: str) -> None:
    message = message.removeprefix("`path`: ")  # the command line names no keyword
    print(clean(f"rsciio-mib {command}: error: {message}"), file=sys.stderr)


def one_line_warnings(command: str):
    """``warnings.showwarning`` for the command line: one line each, each message once."""
    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if "Deprecation" in category.__name__ or issubclass(category, FutureWarning):
            return  # other libraries' notes to developers, not to the person at the terminal
        text = clean(f"rsciio-mib {command}: warning: {message}")
        if text not in seen:
            seen.add(text)
            print(text, file=sys.stderr)

    return show


def describe(path, series: bool = False, storage_options: dict | None = None) -> dict:
    """Everything ``info`` reports about one file, as plain values."""

    from ..format.frame_header import header_timestamp
    from ..reader.frames import read_headers
    from ..reader.load import open_plan
    from ..sources.source import segment_source

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_plan = open_plan(path, series=series, storage_options=storage_options)
    prop, plans = read_plan.prop, read_plan.plans
    header = prop.header
    last_segment = prop.segments[-1]
    last_source = segment_source(last_segment) if last_segment.path else prop.source
    first = header_timestamp(read_headers(prop.source, prop.geometry, 0, 1)[0])
    last = header_timestamp(read_headers(last_source, prop.geometry, last_segment.count - 1, 1)[0])
    kept = ("frames_after_scan", "incomplete_line_frames", "frames_missing")
    zone = "" if header.utc_timestamp else " (Merlin PC local time)"

    def dropped(plan) -> dict:
        out = {k: v for k, v in plan.details.items() if k in kept}
        if "flyback" in plan.details:
            out["flyback_frames"] = plan.details["flyback"].get("dropped_frames", 0)
        return out

    return {
        "file": str(path),
        "layout": header.layout,
        "chips": header.chips,
        "pixel_type": header.pixel_type,
        "raw": header.raw,
        "counter_depth": prop.counter_depth,
        "frame_shape": list(prop.geometry.shape),
        "dtype": prop.dtype,
        "frame_bytes": prop.geometry.frame_bytes,
        "frames": prop.number_of_frames_in_file,
        "files": len(prop.segments),
        "lost_frames": prop.placement.lost_count,
        "lost_frame_numbers": prop.placement.lost_text(),
        "frame_numbers_not_used": prop.placement.note or None,
        "datasets": [
            {
                "counter": plan.counter,
                "navigation_shape": list(plan.shape[::-1]),
                "rule": plan.rule,
                "frames_read": plan.count,
                "dropped": dropped(plan),
            }
            for plan in plans
        ],
        "exposure_ms": prop.exposure,
        "first_timestamp": first + zone,
        "last_timestamp": last + zone,
        "hdr": str(prop.hdr_path) if prop.hdr_path else None,
        "mpx_capture": prop.mpx_capture,
        "trailing_bytes": prop.trailing_bytes,
        "warnings": [str(w.message) for w in caught],
    }


def scan_summary(dataset: dict) -> str:
    """``4 x 2 (frame timestamps (line gaps))``, ``stack of 9 frames (why)``, ``single frame``."""
    shape, rule = dataset["navigation_shape"], dataset["rule"]
    if not shape:
        return "single frame"
    if rule.startswith("stack"):
        why = rule[len("stack") :].strip()
        why = why[1:-1] if why.startswith("(") and why.endswith(")") else why
        return f"stack of {shape[0]} frames" + (f" ({why})" if why else "")
    return " x ".join(map(str, shape)) + f"  (from {rule})"


def text_block(r: dict) -> str:
    lines = [
        r["file"],
        f"  layout        {r['layout']} ({r['chips']} chip{'s' if r['chips'] > 1 else ''}), frames {r['frame_shape'][1]}x{r['frame_shape'][0]} px",
        f"  pixels        {r['pixel_type']}{' RAW' if r['raw'] else ''}, counter depth {r['counter_depth'] or 'not stated'}, read as {r['dtype']}",
        f"  frames        {r['frames']} in {r['files']} file(s), {r['frame_bytes']} bytes each",
    ]
    if r["lost_frames"]:
        lines.append(
            f"  lost          {r['lost_frames']} frame(s), numbers {r['lost_frame_numbers']} (blank positions)"
        )
    if r["frame_numbers_not_used"]:
        lines.append(f"  frame order   file order: {r['frame_numbers_not_used']}")
    for d in r["datasets"]:
        label = "scan" if d["counter"] is None else f"counter {d['counter']}"
        lines.append(f"  {label:<13} {scan_summary(d)}")
        if d["dropped"]:
            lines.append("  dropped       " + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in d["dropped"].items()))
    lines += [
        f"  exposure      {r['exposure_ms']} ms",
        f"  time          {r['first_timestamp']} .. {r['last_timestamp']}",
        f"  .hdr          {r['hdr'] or 'not found'}",
    ]
    if r["trailing_bytes"]:
        lines.append(f"  incomplete    last {r['trailing_bytes']} bytes ignored")
    lines += [f"  warning       {w}" for w in r["warnings"]]
    return "\n".join(lines) + "\n"
