"""Build the RosettaSciIO signal dictionary: axes, metadata, original_metadata."""

from __future__ import annotations

import os

import numpy as np

from ..format.frame_header import GAIN_MODES, iso_time
from ..format.hdr_file import hdr_get
from .acquisition import Acquisition
from .scan import ScanPlan
from .transforms import Transform

PIXEL_SIZE_M = 55e-6  # Medipix3 pixel pitch


def axes(
    nav_shape: tuple[int, ...], sig_shape: tuple[int, int], bin_navigation: int = 1, bin_signal: int = 1
) -> list[dict]:
    """Navigation ``x``, ``y`` (a stack is ``frame``) and signal ``kx``, ``ky`` axes.

    Binned axes count original pixels: their scale is the factor and their
    offset the centre of the first bin.
    """
    nav_names = {1: ["frame"], 2: ["y", "x"]}.get(len(nav_shape), [f"nav{i}" for i in range(len(nav_shape))])
    out = []
    for i, (size, name) in enumerate(zip(tuple(nav_shape) + tuple(sig_shape), nav_names + ["ky", "kx"])):
        factor = bin_navigation if i < len(nav_shape) else bin_signal
        out.append(
            {
                "size": int(size),
                "index_in_array": i,
                "name": name,
                "scale": float(factor),
                "offset": (factor - 1) / 2,
                "units": "px",
                "navigate": i < len(nav_shape),
            }
        )
    return out


def metadata(prop: Acquisition, name: str, transform: Transform | None = None) -> dict:
    """HyperSpy metadata, with every key the built-in reader writes at the same path."""
    header, hdr = prop.header, prop.hdr
    general = {"title": os.path.splitext(os.path.basename(name))[0], "original_filename": os.path.basename(name)}
    stamp = iso_time(header.utc_timestamp or header.timestamp)
    if stamp:
        date, _, time = stamp.partition("T")
        general["date"] = date
        general["time"] = time.rstrip("Z")  # as stored: ns with MQ1A, as the built-in reader gives it
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
    mask = transform.mask(prop.geometry) if transform is not None else None
    if mask is not None:
        general["mask"] = mask  # the quad's gap, where pyxem's s.calibration.mask looks
    return {
        "General": general,
        "Signal": {"signal_type": "electron_diffraction"},
        "Acquisition_instrument": {
            "dwell_time": exposure_s,
            # where pyxem's calibration looks for the detector pixel size (m)
            "TEM": {
                "physical_pixel_size": PIXEL_SIZE_M,
                "Detector": {"Diffraction": {k: v for k, v in _plain(detector).items() if v is not None}},
            },
        },
    }


def original_metadata(prop: Acquisition, plan: ScanPlan, flip_y: bool, transform: Transform | None = None) -> dict:
    """The ``.hdr``, the first frame header and how the file was read."""
    reading = {
        "frames_in_file": prop.number_of_frames_in_file,
        "first_frame": plan.start,
        "frames_read": plan.count,
        "frame_step": plan.step,
        "counter": plan.counter,
        "series_files": prop.path if isinstance(prop.path, list) else None,
        "series_gaps": list(prop.series_gaps) or None,
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
    if transform is not None and transform.quad_gap is not None:
        reading["quad_gap"] = {
            "pixels": transform.quad_gap,
            "stored_gap": transform.stored_gap,
            "gap_rows_and_columns": transform.gap_pixels(),  # before signal binning
        }
    if transform is not None:
        reading["bin_signal"], reading["bin_navigation"] = transform.bin_signal, transform.bin_navigation
    reading["sync_offset"] = plan.sync_offset
    placement = prop.placement
    if plan.placement is not None or placement.note:
        reading["frame_placement"] = {
            "rule": "file order: " + placement.note if placement.note else "by frame number",
            "first_frame_number": placement.first_number,
            "positions": placement.positions,
            "lost_frame_count": placement.lost_count,
            "lost_frame_numbers": placement.lost_text(limit=len(placement.lost)),
            "repeated_frames": placement.repeated,
            "out_of_order_frames": placement.out_of_order,
        }
    if prop.raw:
        reading["raw_decoding"] = f"R64 {prop.counter_depth}-bit words decoded (docs/format.md 4.2)" + (
            ", quad chips reassembled (4.5)" if prop.header.chips == 4 else ""
        )
    out = {
        "mib_properties": builtin_properties(prop, plan),
        "frame_header": prop.header.as_dict(),
        "mib_plugin": reading,
    }
    if prop.hdr is not None:
        out["hdr_file"] = dict(prop.hdr)
    return _plain(out)


def builtin_properties(prop: Acquisition, plan: ScanPlan) -> dict:
    """``mib_properties`` with the keys and values RosettaSciIO's reader writes,
    so scripts written for it find them; ours are beside them (``counter_depth``,
    ``mib_plugin``). Its quirks are kept: ``dynamic_range`` "1 or 6-bit" for
    U08, ``detector_geometry`` only for 2x2 and Nx1, ``merlin_size`` as the
    header states it, ``number_of_frames_in_file`` unset, the count in
    ``frame_number_in_file``, the fields it never sets ``None``.
    """
    header = prop.header
    layout = header.layout.strip()
    return {
        "path": prop.path,
        "buffer": prop.buffer,
        "merlin_size": (header.height, header.width),
        "assembly_size": "single" if header.header_bytes == 384 else "quad" if header.header_bytes == 768 else None,
        "raw": prop.raw,
        "dynamic_range": "1 or 6-bit" if header.pixel_type == "U08" else prop.dynamic_range,
        "packed": None,
        "dtype": prop.dtype,
        "head_size": header.header_bytes,
        "offset": 0,
        "navigation_shape": tuple(plan.shape),
        "xy": plan.count,
        "number_of_frames_in_file": None,
        "gap": None,
        "quad_scale": None,
        "detector_geometry": "2x2" if layout.endswith("2x2") else "Nx1" if layout.endswith("Nx1") else "",
        "frame_double": None,
        "roi_rows": None,
        "exposure": prop.exposure,
        "timestamp": prop.timestamp,
        "file_size": prop.file_size,
        "frame_number_in_file": prop.number_of_frames_in_file,
        "counter_depth": prop.counter_depth,
    }


def _number(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(text.split()[0])
    except ValueError:
        return None


def _plain(value):
    """Values HyperSpy can save to hspy, zspy and nxs alike.

    numpy scalars become Python numbers; a list of strings becomes one string
    (one item per line) and a list of dicts a dict keyed by position, since
    HyperSpy's NeXus reader cannot read either back. ``None`` stays (hspy and
    zspy keep it; HyperSpy's NeXus writer leaves such keys out).
    """
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        if items and all(isinstance(v, str) for v in items):
            return "\n".join(items)
        if items and all(isinstance(v, dict) for v in items):
            return {str(i): v for i, v in enumerate(items)}
        return type(value)(items) if isinstance(value, tuple) else items
    if isinstance(value, np.generic):
        return value.item()
    return value
