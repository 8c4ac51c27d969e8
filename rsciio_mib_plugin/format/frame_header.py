"""Parse one Merlin frame header (``MQ1``) from bytes.

Pure functions only: bytes in, :class:`FrameHeader` out, :class:`MIBFormatError`
on anything malformed. Field positions and their meaning follow
``docs/format.md`` §2.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import MIBFormatError, where

#: Bytes read to find the header length: the length field sits at offset 11
#: while the sequence number has 6 digits, but we split on commas instead of
#: trusting offsets (docs/format.md §2.1), so read a little more.
PROBE_BYTES = 64

#: Largest header we accept. ADMerlin sizes headers as 256 + 128 x chips with at
#: most 16 chips (docs/format.md §2.1); anything larger is not a Merlin header.
MAX_HEADER_BYTES = 256 + 128 * 16

#: Bits of one pixel slot in the file for each pixel type; R64 depends on depth.
PROCESSED_BITS = {"U01": 8, "U08": 8, "U16": 16, "U32": 32, "U64": 64}
# U01 is listed in the manual but never seen; LiberTEM-rs reads it as one byte
# per pixel (docs/format.md §3), and so do we.
RAW_SLOT_BITS = {1: 1, 6: 8, 12: 16, 24: 16}
COUNTER_DEPTHS = (1, 6, 12, 24)


#: Gain modes of the frame headers' field 13 (docs/format.md §2.2).
GAIN_MODES = {0: "SLGM", 1: "LGM", 2: "HGM", 3: "SHGM"}


@dataclass(frozen=True)
class FrameHeader:
    """Everything one ``MQ1`` frame header says (docs/format.md §2.2)."""

    sequence: int
    header_bytes: int
    chips: int
    width: int
    height: int
    pixel_type: str
    layout: str
    chip_select: int
    timestamp: str
    exposure_s: float
    counter: int
    colour_mode: int
    gain_mode: int
    thresholds: tuple[float, ...] = ()
    dacs: tuple[tuple[str, ...], ...] = ()
    utc_timestamp: str | None = None
    exposure_ns: int | None = None
    counter_depth: int | None = None
    fields: tuple[str, ...] = field(default=(), repr=False)

    @property
    def raw(self) -> bool:
        """True for RAW (``R64``) frames."""
        return self.pixel_type == "R64"

    @property
    def gap(self) -> bool:
        """True when the layout inserts gap pixels between chips (``2x2G``)."""
        return stored_gap(self.layout) > 0

    @property
    def exposure_ms(self) -> float:
        """Shutter-open time in ms, from the ns field when present."""
        if self.exposure_ns is not None:
            return self.exposure_ns / 1e6
        return self.exposure_s * 1e3

    def as_dict(self) -> dict:
        """Plain values (str, int, float, lists) for ``original_metadata``."""
        out = {
            "sequence": self.sequence,
            "header_bytes": self.header_bytes,
            "chips": self.chips,
            "width": self.width,
            "height": self.height,
            "pixel_type": self.pixel_type,
            "layout": self.layout,
            "chip_select": self.chip_select,
            "timestamp": self.timestamp,
            "exposure_s": self.exposure_s,
            "counter": self.counter,
            "colour_mode": self.colour_mode,
            "gain_mode": self.gain_mode,
            "thresholds_keV": list(self.thresholds),
            "dacs": [",".join(d) for d in self.dacs],  # one line of DACs per chip
            "text": ",".join(self.fields),
        }
        for key in ("utc_timestamp", "exposure_ns", "counter_depth"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def stored_gap(layout: str) -> int:
    """Pixels stored between the chips of a frame: 2 in the ``2x2G`` layout, else 0 (docs/format.md §8)."""
    return 2 if layout.strip() == "2x2G" else 0


def read_header(more, source: str = "<buffer>", frame: int = 0, offset: int = 0) -> tuple[FrameHeader, bytes]:
    """The frame header at the front of a byte stream, and its bytes.

    How any reader starts: the first bytes give the header length (field 2),
    then the rest of the header is read and parsed. ``more(n)`` returns the
    next ``n`` bytes (fewer only where the data ends): a file read from
    ``offset``, a socket, a file still being written.

    Raises
    ------
    MIBFormatError
        When there is no data, the header is malformed, or fewer bytes
        follow than its length states.
    """
    probe = bytes(more(PROBE_BYTES))
    if not probe:
        raise MIBFormatError(f"{where(source, frame, offset)}: no data (empty file or buffer)")
    length = header_length(probe, source, frame, offset)
    raw = probe[:length] + (bytes(more(length - len(probe))) if length > len(probe) else b"")
    if len(raw) < length:
        raise MIBFormatError(
            f"{where(source, frame, offset)}: header length (field 2) is {length} bytes "
            f"but only {len(raw)} bytes follow"
        )
    return parse_header(raw, source, frame, offset), raw


def reading_from(pread, offset: int):
    """``more(n)`` for :func:`read_header`: consecutive reads from ``offset`` with ``pread(offset, n)``."""
    position = [offset]

    def more(n: int) -> bytes:
        data = pread(position[0], n)
        position[0] += len(data)
        return data

    return more


def header_length(probe: bytes, source: str = "<buffer>", frame: int = 0, offset: int = 0) -> int:
    """Return the header length stated in the first bytes of a frame.

    Parameters
    ----------
    probe : bytes
        At least the first :data:`PROBE_BYTES` bytes of the frame (fewer at the
        end of a file).
    source, frame, offset
        Where the bytes come from, for error messages.
    """
    fields = bytes(probe[:PROBE_BYTES]).split(b",")
    if fields[0] != b"MQ1":
        raise MIBFormatError(
            f"{where(source, frame, offset)}: not a Merlin frame header: expected "
            f"'MQ1' at the start, found {bytes(probe[:8])!r}"
        )
    if len(fields) < 4:
        raise MIBFormatError(
            f"{where(source, frame, offset)}: frame header truncated before the header-length field (field 2)"
        )
    length = _int(fields[2], "header length (field 2)", source, frame, offset)
    if not 16 <= length <= MAX_HEADER_BYTES:
        raise MIBFormatError(
            f"{where(source, frame, offset)}: header length (field 2) is {length}, "
            f"expected 16 to {MAX_HEADER_BYTES} bytes"
        )
    return length


def parse_header(raw: bytes, source: str = "<buffer>", frame: int = 0, offset: int = 0) -> FrameHeader:
    """Parse one complete frame header.

    Parameters
    ----------
    raw : bytes
        The header bytes (its length is the header-length field; trailing
        NUL padding is allowed).
    source, frame, offset
        Where the bytes come from, for error messages.

    Returns
    -------
    FrameHeader

    Raises
    ------
    MIBFormatError
        When a field is missing, not a number, or out of range.
    """
    at = where(source, frame, offset)
    text = bytes(raw).split(b"\x00", 1)[0]
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError as err:
        raise MIBFormatError(f"{at}: frame header is not ASCII text ({err})") from None
    fields = decoded.split(",")
    # The header text ends with a comma, so the last element is empty (§2.1).
    if fields and fields[-1] == "":
        fields = fields[:-1]
    if not fields or fields[0] != "MQ1":
        raise MIBFormatError(f"{at}: expected 'MQ1' as field 0, found {decoded[:8]!r}")
    if len(fields) < 14:
        raise MIBFormatError(f"{at}: frame header has {len(fields)} fields, expected at least 14 (MQ1 ... gain mode)")

    def num(index: int, name: str, base: int = 10, maximum: int = MAX_SMALL_FIELD) -> int:
        return _int(fields[index], f"{name} (field {index})", source, frame, offset, base, maximum)

    header_bytes = num(2, "header length")
    chips = num(3, "number of chips")
    width = num(4, "image width")
    height = num(5, "image height")
    pixel_type = fields[6].strip()
    if pixel_type not in PROCESSED_BITS and pixel_type != "R64":
        raise MIBFormatError(
            f"{at}: pixel type (field 6) is {pixel_type!r}, expected one of {', '.join(list(PROCESSED_BITS) + ['R64'])}"
        )
    for name, value in (("number of chips", chips), ("image width", width), ("image height", height)):
        if value <= 0:
            raise MIBFormatError(f"{at}: {name} is {value}, expected a positive number")

    thresholds, dacs, index = _thresholds_and_dacs(fields)
    utc = exposure_ns = depth = None
    if "MQ1A" in fields[index:]:
        ext = fields.index("MQ1A", index)
        tail = fields[ext + 1 : ext + 4]
        if len(tail) >= 1:
            utc = tail[0].strip()
        if len(tail) >= 2:
            ns = tail[1].strip()
            if not ns.endswith("ns"):
                raise MIBFormatError(f"{at}: exposure (field {ext + 2}) is {ns!r}, expected '<integer>ns'")
            exposure_ns = _int(ns[:-2], f"exposure in ns (field {ext + 2})", source, frame, offset, maximum=MAX_FIELD)
        if len(tail) >= 3:
            depth = _int(tail[2], f"counter depth (field {ext + 3})", source, frame, offset)
            if depth not in COUNTER_DEPTHS:
                raise MIBFormatError(
                    f"{at}: counter depth (field {ext + 3}) is {depth}, expected one of {COUNTER_DEPTHS}"
                )

    return FrameHeader(
        sequence=num(1, "frame number", maximum=MAX_FIELD),
        header_bytes=header_bytes,
        chips=chips,
        width=width,
        height=height,
        pixel_type=pixel_type,
        layout=fields[7].strip(),
        chip_select=num(8, "chip select", base=16),
        timestamp=fields[9].strip(),
        exposure_s=_float(fields[10], "exposure in s (field 10)", source, frame, offset),
        counter=num(11, "counter"),
        colour_mode=num(12, "colour mode"),
        gain_mode=num(13, "gain mode"),
        thresholds=thresholds,
        dacs=dacs,
        utc_timestamp=utc,
        exposure_ns=exposure_ns,
        counter_depth=depth,
        fields=tuple(fields),
    )


def _thresholds_and_dacs(fields: list[str]) -> tuple[tuple[float, ...], tuple[tuple[str, ...], ...], int]:
    """Thresholds (fields 14-21) and per-chip DAC blocks, where present.

    Some RAW headers leave a single empty field instead (docs/format.md §2.4), so
    both are optional. Returns them and the index of the first field after.
    """
    index = 14
    thresholds = []
    while index < len(fields) and len(thresholds) < 8:
        try:
            thresholds.append(float(fields[index]))
        except ValueError:
            break
        index += 1
    dacs = []
    # A DAC block is a chip revision (e.g. "3RX") followed by 27 numbers.
    while index + 27 < len(fields) and fields[index] not in ("", "MQ1A") and not fields[index].isdigit():
        block = fields[index + 1 : index + 28]
        if not all(v.strip().isdigit() for v in block):
            break
        dacs.append(tuple(v.strip() for v in block))
        index += 28
    return tuple(thresholds), tuple(dacs), index


#: Largest value of a numeric header field: frame numbers and ns exposures
#: fit in int64 (numpy arrays of them must not overflow); everything else is
#: far smaller.
MAX_FIELD = 2**63 - 1
MAX_SMALL_FIELD = 2**31 - 1


def _int(value, name: str, source: str, frame: int, offset: int, base: int = 10, maximum: int = MAX_SMALL_FIELD) -> int:
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    try:
        number = int(text.strip(), base)
    except ValueError:
        raise MIBFormatError(f"{where(source, frame, offset)}: {name} is {text[:40]!r}, expected an integer") from None
    if not 0 <= number <= maximum:
        raise MIBFormatError(f"{where(source, frame, offset)}: {name} is {text[:40]!r}, expected 0 to {maximum}")
    return number


def _float(value: str, name: str, source: str, frame: int, offset: int) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0 <= number < 1e9:  # also refuses nan and inf
        raise MIBFormatError(
            f"{where(source, frame, offset)}: {name} is {value[:40]!r}, expected a number of seconds"
        ) from None
    return number


def header_values(raw, index: int = 0) -> tuple[str, float, int]:
    """Start time, exposure (ms) and counter field of one header, parsed lightly.

    The time and exposure come from the MQ1A extension (UTC, ns) when present,
    else from fields 9 and 10 (the Merlin PC's local time, seconds), §2.2.
    """
    if isinstance(raw, str):
        raw = raw.encode("latin-1")
    fields = bytes(raw).split(b"\x00", 1)[0].split(b",")
    if fields[0] != b"MQ1" or len(fields) < 12:
        raise MIBFormatError(f"header {index}: not a Merlin frame header (starts {bytes(raw[:8])!r})")
    try:
        if b"MQ1A" in fields:
            ext = fields.index(b"MQ1A")
            time = fields[ext + 1].decode("ascii").strip()
            exposure = int(fields[ext + 2].strip().removesuffix(b"ns")) / 1e6
        else:
            time, exposure = fields[9].decode("ascii").strip(), float(fields[10]) * 1e3
        counter = int(fields[11])
    except (ValueError, IndexError, UnicodeDecodeError, OverflowError):
        raise MIBFormatError(f"header {index}: the time, exposure or counter field is malformed") from None
    if not (0 <= exposure < 1e12 and 0 <= counter <= MAX_SMALL_FIELD):
        raise MIBFormatError(
            f"header {index}: exposure {exposure} ms or counter {counter} is out of range "
            f"(0 to 1e12 ms, 0 to {MAX_SMALL_FIELD})"
        )
    return time, exposure, counter


def header_exposure_ms(raw: bytes, index: int = 0) -> float:
    """Exposure in ms of one header: the MQ1A ns field, else field 10 in s."""
    return header_values(raw, index)[1]


def header_timestamp(raw: bytes, index: int = 0) -> str:
    """Start time of one frame: the MQ1A UTC time, else the local time (field 9)."""
    return header_values(raw, index)[0]


def iso_time(text: str) -> str | None:
    """A frame time as ISO ``YYYY-MM-DDThh:mm:ss[.f]``, or ``None`` if unreadable.

    MQ1A gives ``2021-04-15T13:44:43.100924481Z``, field 9
    ``2021-04-15 14:44:43.100924``, and files before ~2018 ``15/04/2021 14:44:43``
    (day first; pyxem's fallback parser, docs/format.md §2.4).
    """
    text = text.strip().rstrip("Z")
    date, _, time = text.replace("T", " ").partition(" ")
    if "/" in date:
        parts = date.split("/")
        if len(parts) != 3:
            return None
        date = f"{parts[2]}-{parts[1].zfill(2)}-{parts[0].zfill(2)}"
    if not (_DATE.fullmatch(date) and _TIME.fullmatch(time)):
        return None
    return f"{date}T{time}"


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TIME = re.compile(r"\d{1,2}:\d{2}:\d{2}(\.\d+)?", re.ASCII)


def frame_numbers(headers) -> np.ndarray:
    """Field 1, the frame number, of raw headers (``S<n>`` or bytes), as int64; -1 where it is not
    a number of at most 18 digits (docs/format.md §2.1: six digits until frame 999 999, then more)."""
    rows = np.asarray(headers)
    if rows.size == 0:
        return np.zeros(0, np.int64)
    raw = np.ascontiguousarray(rows.astype(f"S{max(24, rows.dtype.itemsize)}")).view(np.uint8).reshape(rows.size, -1)
    text = raw[:, 4:24]
    digit = (text >= ord("0")) & (text <= ord("9"))
    width = np.argmin(digit, axis=1)  # digits before the first non-digit
    ok = (raw[:, :4] == np.frombuffer(b"MQ1,", np.uint8)).all(axis=1) & (width > 0) & (width <= 18)
    ok &= text[np.arange(len(text)), np.minimum(width, text.shape[1] - 1)] == ord(",")
    values = np.zeros(len(text), np.int64)
    for k in range(18):  # digit by digit, most significant first
        more = ok & (width > k)
        values[more] = values[more] * 10 + (text[more, k] - ord("0"))
    values[~ok] = -1
    return values


def parse_evidence(headers, start_index: int = 0):
    """Start times (ns, or ``None`` when unreadable), exposures (ms) and counter
    fields of many headers at once. The times are converted by numpy in one go.
    """
    alike = _evidence_of_alike(headers, start_index)
    if alike is not None:
        return alike
    values = [header_values(raw, i) for i, raw in enumerate(headers, start_index)]
    exposures = np.array([v[1] for v in values], dtype=float)
    counters = np.array([v[2] for v in values], dtype=np.int64)
    times = [iso_time(v[0]) for v in values]
    return _times_ns(times), exposures, counters


def _evidence_of_alike(headers, start_index: int):
    """:func:`parse_evidence` of headers that differ only in their digits, or ``None``.

    The headers of one acquisition are alike byte for byte but for the digits
    of the frame number, times, exposures and counter field: their fields then
    start at the same offsets, the first header is parsed as usual and those
    fields are cut out of all at once (16,384 headers: 18 ms instead of 70).
    Anything else leaves it to the header-by-header parse, which names the
    header.
    """
    rows = np.asarray(headers)
    if rows.ndim != 1 or rows.size < 2 or rows.dtype.kind != "S":
        return None
    raw = np.ascontiguousarray(rows).view(np.uint8).reshape(rows.size, -1)
    first = bytes(raw[0])
    time, exposure, counter = header_values(first, start_index)
    fields = first.split(b"\x00", 1)[0].split(b",")
    starts = np.cumsum([0] + [len(f) + 1 for f in fields])
    if b"MQ1A" in fields:
        at_time, at_exposure = fields.index(b"MQ1A") + 1, fields.index(b"MQ1A") + 2
    else:
        at_time, at_exposure = 9, 10
    # Alike: the same bytes as the first header, but for digits of the fields that change from
    # frame to frame (frame number, local time, shutter, counter, MQ1A time and exposure).
    varying = np.zeros(raw.shape[1], bool)
    for i in {1, 9, 10, 11, at_time, at_exposure}:
        varying[starts[i] : starts[i] + len(fields[i])] = True
    layout = np.where(varying & (raw >= ord("0")) & (raw <= ord("9")), ord("0"), raw)
    if not (layout == layout[0]).all():
        return None

    def column(i: int) -> np.ndarray:
        return np.ascontiguousarray(raw[:, starts[i] : starts[i] + len(fields[i])]).view(f"S{len(fields[i])}")[:, 0]

    try:
        counters = column(11).astype(np.int64)
        if at_time == 9:
            exposures = column(10).astype(float) * 1e3
        else:
            exposures = np.char.rstrip(np.char.strip(column(at_exposure)), b"ns").astype(np.int64) / 1e6
    except (ValueError, OverflowError):
        return None
    if (
        counters[0] != counter
        or exposures[0] != exposure
        or not ((counters >= 0) & (counters <= MAX_SMALL_FIELD)).all()
        or not ((exposures >= 0) & (exposures < 1e12)).all()
    ):
        return None
    iso = iso_time(time)
    if iso is None:  # alike headers: unreadable in every one
        return None, exposures, counters
    times = np.char.replace(np.char.rstrip(np.char.strip(column(at_time)), b"Z"), b" ", b"T").astype(str)
    if times[0] != iso:  # a layout the simple rewrite does not cover (day-first dates)
        return None
    return _times_ns(times), exposures, counters


#: Frame times outside these years do not fit ``datetime64[ns]`` (1678-2262)
#: and cannot be real; the timestamp rule is skipped for them.
TIME_RANGE = (np.datetime64("1970-01-01", "us"), np.datetime64("2262-01-01", "us"))


def _times_ns(times):
    """ISO times (a list or array of str) as int64 ns, or ``None`` when any is unreadable or out of range."""
    if not len(times) or any(t is None for t in times):
        return None
    try:
        stamps = np.array(times, dtype="datetime64[us]")
    except (ValueError, OverflowError):
        return None
    if stamps.min() < TIME_RANGE[0] or stamps.max() >= TIME_RANGE[1]:
        return None
    return np.array(times, dtype="datetime64[ns]").astype(np.int64)
