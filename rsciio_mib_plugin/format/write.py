"""Write Merlin ``.mib`` files (and their ``.hdr``) as the Merlin software does.

Used by the tests to build synthetic files of every kind, and by users who
want to hand MIB data to other tools. Header layout follows docs/format.md §2,
RAW packing §4.2-§4.5, the ``.hdr`` §9.1.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..sources.atomic import replacing
from .frame_header import TIME_RANGE
from .mpx import mpx_message

_DEPTH_TYPES = {1: "U08", 6: "U08", 12: "U16", 24: "U32"}
_DEPTH_DTYPES = {1: np.uint8, 6: np.uint8, 12: np.uint16, 24: np.uint32}
_DEFAULT_DEPTH = {np.dtype(np.bool_): 1, np.dtype(np.uint8): 6, np.dtype(np.uint16): 12, np.dtype(np.uint32): 24}
_LAYOUTS = {256: ("1x1", 1, 0x01), 512: ("2x2", 4, 0x0F), 514: ("2x2G", 4, 0x0F)}
_DACS = "011,511,000,000,000,000,000,000,175,010,200,125,100,100,093,100,099,030,128,004,255,140,128,191,179,511,511"
_THRESHOLDS = (2.0, 511.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
_START = np.datetime64("2024-07-02T11:46:43", "ns")
HDR_BYTES = 2048


def write_mib(
    filename: str | os.PathLike,
    data,
    *,
    counter_depth: int | None = None,
    exposure=0.001,
    hdr: bool | dict = True,
    raw: bool = False,
    timestamps=None,
    counter=0,
    mq1a: bool = True,
    first_number: int = 1,
    mpx: bool = False,
) -> Path:
    """Write frames to a Merlin ``.mib`` file with real headers and a ``.hdr``.

    Parameters
    ----------
    filename : str or pathlib.Path
        The ``.mib`` file to write; the ``.hdr`` goes next to it.
    data : array-like
        Unsigned integer frames shaped ``(*scan, rows, cols)`` in file order.
        ``cols`` sets the layout: 256 -> ``1x1``, 512 -> ``2x2``, 514 ->
        ``2x2G``; fewer rows than columns is a region of interest.
    counter_depth : {1, 6, 12, 24}, optional
        Default from the dtype: bool 1, uint8 6, uint16 12, uint32 24.
    exposure : float or array-like
        Shutter time in seconds, one value or one per frame.
    hdr : bool or dict
        Write the ``.hdr`` side file. A dict overrides its keys (matched by
        prefix, e.g. ``{"ScanX": None}`` removes the key).
    raw : bool
        Write RAW (``R64``) frames instead of processed ones.
    timestamps : array-like, optional
        Frame start times (``datetime64`` or integer ns since the epoch), one
        per frame. Default: frames back to back, ``exposure`` apart.
    counter : int or array-like
        The header's counter field, one value or one per frame.
    mq1a : bool
        Write the ``MQ1A`` extension (UTC time, ns exposure, counter depth);
        ``False`` writes headers as older Merlin software did.
    first_number : int
        Frame number of the first frame (files of a multi-file series go on
        counting).
    mpx : bool
        Write a capture of the TCP data port instead: ``MPX,`` framed
        messages, the ``.hdr`` as the first (``HDR,``) message when ``hdr``
        is not False, then one message per frame (docs/format.md §12).

    Returns
    -------
    pathlib.Path
        The ``.mib`` path.
    """
    path, hdr_path = _check_paths(filename)
    for name, value in (("hdr", hdr), ("raw", raw), ("mq1a", mq1a), ("mpx", mpx)):
        if not isinstance(value, (bool, np.bool_)) and not (name == "hdr" and isinstance(value, dict)):
            raise TypeError(f"`{name}` must be True or False{' or a dict' if name == 'hdr' else ''}, not {value!r}")
    data = np.asarray(data)
    if data.ndim < 2:
        raise ValueError(f"`data` must be shaped (*scan, rows, cols), got shape {data.shape}")
    if data.dtype.kind not in "biu":
        raise ValueError(f"`data` must hold unsigned integers (or bools), not {data.dtype}: round or cast it first")
    rows, cols = data.shape[-2:]
    if cols not in _LAYOUTS:
        raise ValueError(f"`data`: frames must be 256, 512 or 514 pixels wide, got {cols}")
    if rows > cols or rows == 0:
        raise ValueError(f"`data`: frames must have 1 to {cols} rows, got {rows}")
    if counter_depth is not None and (isinstance(counter_depth, (bool, np.bool_)) or counter_depth not in _DEPTH_TYPES):
        raise ValueError(f"`counter_depth` must be 1, 6, 12 or 24, not {counter_depth!r}")
    depth = counter_depth if counter_depth is not None else _DEFAULT_DEPTH.get(data.dtype)
    if depth not in _DEPTH_TYPES:
        raise ValueError(f"`counter_depth` is needed for data of dtype {data.dtype} (1, 6, 12 or 24)")
    if data.size and (data.min() < 0 or int(data.max()) >= 1 << depth):
        raise ValueError(
            f"`data` values must fit in counter_depth={depth} bits (0..{(1 << depth) - 1}), "
            f"found {data.min()}..{data.max()}"
        )
    layout, chips, select = _LAYOUTS[cols]
    if raw and layout != "1x1" and rows != cols:
        raise ValueError("`data`: quad RAW frames must be whole (512 or 514 rows)")
    scan = data.shape[:-2]
    frames = data.reshape((-1, rows, cols)).astype(_DEPTH_DTYPES[depth])
    n = frames.shape[0]
    exposures = _per_frame("exposure", exposure, n, float)
    if not np.all(np.isfinite(exposures) & (exposures >= 0) & (exposures < 1e9)):
        raise ValueError(f"`exposure` must be finite seconds >= 0, got {exposure!r}")
    counters = _per_frame("counter", counter, n, int)
    if (
        isinstance(first_number, (bool, np.bool_))
        or not isinstance(first_number, (int, np.integer))
        or first_number < 0
    ):
        raise ValueError(f"`first_number` must be an integer >= 0, not {first_number!r}")
    if timestamps is None:
        steps = np.cumsum(np.r_[0, np.round(exposures[:-1] * 1e9).astype(np.int64)])
        times = _START + steps.astype("timedelta64[ns]")
    else:
        times = np.asarray(timestamps)
        if times.dtype.kind == "M":
            wide = times.astype("datetime64[us]")
            if wide.size and (wide.min() < TIME_RANGE[0] or wide.max() >= TIME_RANGE[1]):
                raise ValueError("`timestamps` must lie between 1970 and 2262 (datetime64[ns])")
            times = times.astype("datetime64[ns]")
        elif times.dtype.kind in "iu":
            times = times.astype(np.int64).astype("datetime64[ns]")
        else:
            raise ValueError(f"`timestamps` must be datetime64 or integer ns, not {times.dtype}")
        if times.shape != (n,):
            raise ValueError(f"`timestamps` needs one value per frame ({n}), got shape {times.shape}")

    if raw:
        payloads = encode_raw(frames, depth, layout)
        stored_h, stored_w = (rows, cols) if layout == "1x1" else (256, 1024)
        if depth == 24:
            stored_w *= 2
        pixel_type = "R64"
    else:
        payloads = frames.astype(frames.dtype.newbyteorder(">")).reshape(n, -1).view(np.uint8)
        stored_h, stored_w, pixel_type = rows, cols, _DEPTH_TYPES[depth]

    header_bytes = 256 + 128 * chips
    hdr_bytes = None
    if hdr is not False:
        hdr_bytes = _hdr_text(scan, n, depth, layout, chips, times[0], hdr if isinstance(hdr, dict) else {})
    headers = [
        _frame_header_text(
            first_number + i, header_bytes, chips, stored_w, stored_h, pixel_type, layout, select,
            times[i], float(exposures[i]), int(counters[i]), depth, mq1a,
        ).ljust(header_bytes, b"\x00")
        for i in range(n)
    ]  # fmt: skip
    # Everything is checked and built: only now is anything written, under
    # temporary names renamed at the end, so a failure never leaves a file
    # half-written or an existing one destroyed.
    with replacing(path) as temp, open(temp, "wb") as f:
        if mpx and hdr_bytes is not None:
            f.write(mpx_message(b"HDR," + hdr_bytes[len(b"HDR,") :].rstrip(b" ")))
        for i in range(n):
            frame = headers[i] + payloads[i].tobytes()
            f.write(mpx_message(frame) if mpx else frame)
        if hdr_bytes is not None and not mpx:
            with replacing(hdr_path) as hdr_temp:
                hdr_temp.write_bytes(hdr_bytes)
    return path


def _check_paths(filename) -> tuple[Path, Path]:
    """The ``.mib`` path and its ``.hdr`` path; they must differ."""
    if not isinstance(filename, (str, os.PathLike)):
        raise TypeError(f"`filename` must be a str or pathlib.Path, not {type(filename).__name__}")
    path = Path(filename)
    if path.suffix.lower() == ".hdr":
        raise ValueError(f"`filename` {str(path)!r} ends in .hdr: that name is for the header side file; use .mib")
    hdr_path = path.with_suffix(".HDR" if path.suffix == ".MIB" else ".hdr")
    if path.is_dir():
        raise IsADirectoryError(f"`filename` {str(path)!r} is a directory")
    return path, hdr_path


def _per_frame(name: str, value, n: int, kind) -> np.ndarray:
    """A scalar or one value per frame, checked for type."""
    array = np.asarray(value)
    if array.dtype.kind == "b" or array.dtype.kind not in ("iu" if kind is int else "iuf"):
        raise ValueError(
            f"`{name}` must be {'an integer' if kind is int else 'a number'} or one per frame, not {value!r}"
        )
    if array.ndim and array.shape != (n,):
        raise ValueError(f"`{name}` needs one value or one per frame ({n}), got shape {array.shape}")
    if kind is int and array.size and array.min() < 0:
        raise ValueError(f"`{name}` must be >= 0, got {value!r}")
    return np.broadcast_to(array.astype(kind), (n,))


def _frame_header_text(
    seq, header_bytes, chips, width, height, pixel_type, layout, select, time, exposure, counter, depth, mq1a
) -> bytes:
    local = (time + np.timedelta64(1, "h")).astype("datetime64[us]")
    fields = [
        "MQ1",
        f"{seq:06d}",
        f"{header_bytes:05d}",
        f"{chips:02d}",
        f"{width:04d}",
        f"{height:04d}",
        pixel_type,
        f"{layout:>6}",
        f"{select:02X}",
        str(local).replace("T", " "),
        f"{exposure:.6f}",
        str(counter),
        "0",
        "0",
        *(_merlin_float(t) for t in _THRESHOLDS),
    ]
    for _ in range(chips):
        fields += ["3RX", *_DACS.split(",")]
    if mq1a:
        fields += ["MQ1A", f"{str(time.astype('datetime64[ns]'))}Z", f"{round(exposure * 1e9)}ns", str(depth)]
    text = (",".join(fields) + ",").encode("ascii")
    if len(text) > header_bytes:
        raise ValueError(f"header text of {len(text)} bytes does not fit in {header_bytes}")
    return text


def _merlin_float(value: float) -> str:
    """Thresholds as Merlin prints them: ``2.000000E+0`` (one-digit exponent)."""
    mantissa, exponent = f"{value:.6E}".split("E")
    return f"{mantissa}E{int(exponent):+d}"


def _hdr_text(scan, n, depth, layout, chips, time, overrides) -> bytes:
    scan_y, scan_x = scan if len(scan) == 2 else (None, None)
    local = (time + np.timedelta64(1, "h")).astype("datetime64[s]").item()
    chip_ids = ",".join(["W556_B4"] + ["W556_J2", "W556_M5", "W556_G4"][: chips - 1] + [" - "] * (4 - chips))
    entries = {
        "Time and Date Stamp (day, mnth, yr, hr, min, s)": local.strftime("%d/%m/%Y %H:%M:%S"),
        "Chip ID": chip_ids,
        "Chip Type (Medipix 3.0, Medipix 3.1, Medipix 3RX)": "Medipix 3RX",
        "Assembly Size (NX1, 2X2)": f"{layout.rstrip('G'):>6}",
        "Chip Mode  (SPM, CSM, CM, CSCM)": "SPM",
        "Counter Depth (number)": str(depth),
        "Gain": "SLGM",
        "Active Counters": "Counter 0",
        "Thresholds (keV)": ",".join(_merlin_float(t) for t in _THRESHOLDS),
        "DACs": "; ".join([_DACS] * chips + [""] * (4 - chips)),
        "Gap Fill Mode": "None",
        "Acquisition Type (Normal, Th_scan, Config)": "Normal",
        "Frames in Acquisition (Number)": str(n),
        "Frames per Trigger (Number)": str(scan_x if scan_x else 1),
        "Trigger Start (Positive, Negative, Internal)": "Rising Edge LVDS" if scan_x else "Internal",
        "Trigger Stop (Positive, Negative, Internal)": "Internal",
        "Sensor Bias (V)": "120 V",
        "Sensor Polarity (Positive, Negative)": "Positive",
        "Temperature (C)": "Board Temp 46.758652 Deg C",
        "Humidity (%)": "Board Humidity 12.508911 ",
        "Medipix Clock (MHz)": "180MHz",
        "Readout System": "Merlin Quad",
        "Software Version": "1.6.1.217",
    }
    if scan_x:
        entries["ScanX"], entries["ScanY"] = str(scan_x), str(scan_y)
    for key, value in overrides.items():
        matches = [k for k in entries if k.lower().startswith(key.lower())] or [key]
        for match in matches:
            if value is None:
                entries.pop(match, None)
            else:
                entries[match] = str(value)
    lines = ["HDR,\t"] + [f"{k}:\t{v}" for k, v in entries.items()] + ["End\t"]
    text = "\r\n".join(lines).encode("latin-1")
    return text.ljust(HDR_BYTES, b" ")


def encode_raw(frames: np.ndarray, depth: int, layout: str) -> np.ndarray:
    """Pack ``(n, rows, cols)`` pixels into RAW ``R64`` payloads (``(n, bytes)`` uint8).

    The exact inverse of :func:`rsciio_mib_plugin.decode.decode_frames` for RAW.
    """
    n = frames.shape[0]
    if layout != "1x1":
        gap = 2 if layout.endswith("G") else 0
        half = (frames.shape[1] - gap) // 2
        bottom = half + gap
        c = 256
        stored = np.empty((n, half, 4 * c), dtype=frames.dtype)
        stored[:, :, 3 * c :] = frames[:, :half, :c]
        stored[:, :, 2 * c : 3 * c] = frames[:, :half, c + gap :]
        stored[:, :, c : 2 * c] = frames[:, bottom:, :c][:, ::-1, ::-1]
        stored[:, :, :c] = frames[:, bottom:, c + gap :][:, ::-1, ::-1]
    else:
        stored = frames
    if depth == 24:
        planes = [(stored >> 12) & 0xFFF, stored & 0xFFF]
        return np.concatenate([_pack(p.reshape(n, -1), 12) for p in planes], axis=1)
    return _pack(stored.reshape(n, -1), depth)


def _pack(pixels: np.ndarray, depth: int) -> np.ndarray:
    n = pixels.shape[0]
    if depth == 1:
        stream = np.packbits(pixels.astype(np.uint8), axis=1, bitorder="little")
    elif depth == 6:
        stream = pixels.astype(np.uint8)
    else:
        stream = np.ascontiguousarray(pixels.astype("<u2")).view(np.uint8).reshape(n, -1)
    if stream.shape[1] % 8:
        raise ValueError("RAW frames must fill whole 64-bit words")
    # Reverse the bytes of each 64-bit word (docs/format.md §4.2).
    return np.ascontiguousarray(stream).view("<u8").astype(">u8").view(np.uint8).reshape(n, -1)
