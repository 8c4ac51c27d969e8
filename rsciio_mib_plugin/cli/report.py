"""What the command line prints: one-line errors and warnings, ``info`` reports."""

from __future__ import annotations

import sys
import warnings

from ..errors import MIBFormatError


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
    from ..sources.source import is_reference, segment_source

    if is_reference(path):
        return _describe_reference(path, storage_options)

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
        "settings": settings(prop.hdr, header),
        "hdr": str(prop.hdr_path) if prop.hdr_path else None,
        "mpx_capture": prop.mpx_capture,
        "trailing_bytes": prop.trailing_bytes,
        "warnings": [str(w.message) for w in caught],
    }


def _describe_reference(path, storage_options: dict | None) -> dict:
    """``info`` of a reference file: the ``.mib`` it points at, with the datasets the reference
    declares (checked as a load checks it)."""
    from ..reader.reference import load_reference_file, open_references, reference_targets

    refs, name = load_reference_file(path)
    group = open_references(refs, storage_options, name)  # checked once: every target opened
    targets = reference_targets(refs)
    if not targets:
        raise MIBFormatError(f"{name}: the reference lists no frames")
    report = describe(targets[0], storage_options=storage_options)
    report["file"], report["reference_to"] = name, targets
    report["datasets"] = []
    for _, array in sorted(group.arrays()):
        reading = array.attrs["original_metadata"].get("mib_plugin", {})
        report["datasets"].append(
            {
                "counter": reading.get("counter"),
                "navigation_shape": list(array.shape[:-2][::-1]),
                "rule": reading.get("navigation_shape_rule", "as the reference declares"),
                "frames_read": int(array.nchunks_initialized),
                "dropped": {},
            }
        )
    return report


def settings(hdr: dict | None, header) -> dict:
    """Detector settings as microscopists log them: the ``.hdr``'s words where it has them, else
    what the frame headers say (gain mode, colour mode, thresholds)."""
    from ..format.frame_header import GAIN_MODES, iso_time
    from ..format.hdr_file import hdr_settings

    out = hdr_settings(hdr)
    if "started" in out:
        out["started"] = iso_time(out["started"]) or out["started"]
    out.setdefault("chip_mode", "colour" if header.colour_mode else "monochrome")
    out.setdefault("gain", GAIN_MODES.get(header.gain_mode, f"mode {header.gain_mode}"))
    thresholds = out.get("thresholds_keV", ",".join(map(str, header.thresholds)))
    try:
        out["thresholds_keV"] = [float(t) for t in thresholds.split(",") if t.strip() and float(t)]
    except ValueError:
        out["thresholds_keV"] = thresholds
    return out


def hyperspy_shape(navigation: list[int], frame: list[int]) -> str:
    """HyperSpy's ``(x, y|columns, rows)``: the navigation shape (x first) and the frame (rows, columns)."""
    return f"({', '.join(map(str, navigation))}|{frame[1]}, {frame[0]})"


def scan_summary(dataset: dict, frame: list[int]) -> str:
    """``(4, 2|256, 256), a scan from frame timestamps (line gaps)``, ``(9|256, 256), a stack of 9
    frames (why)``: HyperSpy's shape, and the words its metadata use."""
    shape, rule = dataset["navigation_shape"], dataset["rule"]
    if not shape or rule.startswith("stack"):
        why = rule[len("stack") :].strip() if rule.startswith("stack") else ""
        why = why[1:-1] if why.startswith("(") and why.endswith(")") else why
        n = shape[0] if shape else 1
        return f"{hyperspy_shape(shape, frame)}, a stack of {n} frame{'s' if n != 1 else ''}" + (
            f" ({why})" if why else ""
        )
    return f"{hyperspy_shape(shape, frame)}, a scan from {rule}"


def _zone(timestamp: str) -> str:
    """A frame time with its zone said in words (MQ1A times end in ``Z``: UTC)."""
    return timestamp[:-1] + " UTC" if timestamp.endswith("Z") else timestamp


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
    if r.get("reference_to"):
        lines.append(f"  reference to  {', '.join(r['reference_to'])}")
    for d in r["datasets"]:
        label = "shape" if d["counter"] is None else f"counter {d['counter']}"
        lines.append(f"  {label:<13} {scan_summary(d, r['frame_shape'])}")
        if d["dropped"]:
            lines.append("  dropped       " + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in d["dropped"].items()))
    c = r["settings"]
    thresholds = c["thresholds_keV"]
    thresholds = ", ".join(f"{t:g}" for t in thresholds) + " keV" if isinstance(thresholds, list) else thresholds
    lines += [
        f"  exposure      {r['exposure_ms']} ms",
        f"  settings      {c['chip_mode']}, gain {c['gain']}, thresholds {thresholds or 'none stated'}"
        + (f", bias {c['bias']}" + (f" {c['polarity'].lower()}" if "polarity" in c else "") if "bias" in c else ""),
    ]
    detector = [c[k] for k in ("chip_type", "readout") if k in c]
    if "software_version" in c:
        detector.append(f"software {c['software_version']}")
    if detector:
        lines.append(f"  detector      {', '.join(detector)}")
    lines.append(f"  frame times   {_zone(r['first_timestamp'])} .. {_zone(r['last_timestamp'])} (frame headers)")
    if "started" in c:
        lines.append(f"  started       {c['started']} Merlin PC local time (.hdr)")
    lines.append(f"  .hdr          {r['hdr'] or 'not found'}")
    if r["trailing_bytes"]:
        lines.append(f"  incomplete    last {r['trailing_bytes']} bytes ignored")
    lines += [f"  warning       {w}" for w in r["warnings"]]
    return "\n".join(lines) + "\n"
