"""Build the RosettaSciIO signal dictionary: axes, metadata, original_metadata."""

from __future__ import annotations

import os

import numpy as np

from .hdr import hdr_get
from .header import iso_time
from .properties import MIBProperties
from .scan import ScanPlan

GAIN_MODES = {0: "SLGM", 1: "LGM", 2: "HGM", 3: "SHGM"}
PIXEL_SIZE_M = 55e-6  # Medipix3 pixel pitch


def axes(nav_shape: tuple[int, ...], sig_shape: tuple[int, int]) -> list[dict]:
    """Navigation ``x``, ``y`` (a stack is ``frame``) and signal ``kx``, ``ky`` axes."""
    nav_names = {1: ["frame"], 2: ["y", "x"]}.get(len(nav_shape), [f"nav{i}" for i in range(len(nav_shape))])
    out = []
    for i, (size, name) in enumerate(zip(tuple(nav_shape) + tuple(sig_shape), nav_names + ["ky", "kx"])):
        out.append(
            {
                "size": int(size),
                "index_in_array": i,
                "name": name,
                "scale": 1.0,
                "offset": 0.0,
                "units": "px",
                "navigate": i < len(nav_shape),
            }
        )
    return out


def metadata(prop: MIBProperties, name: str) -> dict:
    """HyperSpy metadata, with every key the built-in reader writes at the same path."""
    header, hdr = prop.header, prop.hdr
    general = {"title": os.path.splitext(os.path.basename(name))[0], "original_filename": os.path.basename(name)}
    stamp = iso_time(header.utc_timestamp or header.timestamp)
    if stamp:
        date, _, time = stamp.partition("T")
        general["date"] = date
        # HyperSpy parses the time with datetime, which keeps microseconds.
        whole, _, fraction = time.rstrip("Z").partition(".")
        general["time"] = whole + (f".{fraction[:6]}" if fraction else "")
        if header.utc_timestamp:
            general["time_zone"] = "UTC"
    exposure_s = prop.exposure * 1e-3
    detector = {
        "detector_name": "Merlin " + (hdr_get(hdr, "Chip Type") or "Medipix3"),
        "exposure_time": exposure_s,
        "counter_depth": prop.counter_depth,
        "thresholds": list(header.thresholds) or None,
        "gain": hdr_get(hdr, "Gain") or GAIN_MODES.get(header.gain_mode),
        "chip_mode": hdr_get(hdr, "Chip Mode"),
        "bias": _number(hdr_get(hdr, "Sensor Bias")),
        "physical_pixel_size": PIXEL_SIZE_M,
        "raw": prop.raw,
    }
    return {
        "General": general,
        "Signal": {"signal_type": "electron_diffraction"},
        "Acquisition_instrument": {
            "dwell_time": exposure_s,
            "TEM": {"Detector": {"Diffraction": _plain(detector)}},
        },
    }


def original_metadata(prop: MIBProperties, plan: ScanPlan, flip_y: bool) -> dict:
    """The ``.hdr``, the first frame header and how the file was read."""
    reading = {
        "frames_in_file": prop.number_of_frames_in_file,
        "first_frame": plan.start,
        "frames_read": plan.count,
        "frame_step": plan.step,
        "counter": plan.counter,
        "series_files": prop.path if isinstance(prop.path, list) else None,
        "series_gaps": prop.series_gaps or None,
        "navigation_shape_rule": plan.rule,
        "navigation_shape_details": plan.details,
        "flip_y": flip_y,
        "orientation": (
            "rows flipped: row 0 is the top of the image as the Merlin software shows it"
            if flip_y
            else "file order: row 0 is the first row stored, the bottom of the Merlin display"
        ),
        "trailing_bytes_ignored": prop.trailing_bytes,
        "messages": plan.messages,
    }
    if prop.raw:
        reading["raw_decoding"] = f"R64 {prop.counter_depth}-bit words decoded (mib-format.md 4.2)" + (
            ", quad chips reassembled (4.5)" if prop.header.chips == 4 else ""
        )
    out = {
        "mib_properties": prop.as_dict(),
        "frame_header": prop.header.as_dict(),
        "mib_plugin": reading,
    }
    if prop.hdr is not None:
        out["hdr_file"] = dict(prop.hdr)
    return _plain(out)


def _number(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(text.split()[0])
    except ValueError:
        return None


def _plain(value):
    """Values HyperSpy can save anywhere: no None, no numpy scalars, no dots in keys."""
    if isinstance(value, dict):
        return {str(k).replace(".", "_"): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
