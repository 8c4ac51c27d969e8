"""Find and parse the ``.hdr`` acquisition-header side file (docs/format.md §9)."""

from __future__ import annotations

import warnings

from ..errors import MIBWarning

#: Real ``.hdr`` files are 2048 bytes (§9.1); anything far larger is not one.
MAX_HDR_BYTES = 1 << 20

# Keys are matched on stable prefixes because their bracketed parts changed
# across software versions (§9.2).
FRAMES_IN_ACQUISITION = "Frames in Acquisition"
FRAMES_PER_TRIGGER = "Frames per Trigger"
COUNTER_DEPTH = "Counter Depth"
ACTIVE_COUNTERS = "Active Counters"
SCAN_X = "ScanX"
SCAN_Y = "ScanY"


def parse_hdr_text(text: str) -> dict[str, str]:
    """Parse the text of a ``.hdr`` file into ``{key: value}``.

    Lines are ``Key:<TAB>Value``; each line is split at its first TAB (keys
    contain colons and brackets, values contain colons), the key loses its
    trailing colon and the value its line ending, as the Merlin software
    wrote them and as RosettaSciIO's reader keeps them (§9.1); readers of a
    value strip it (:func:`hdr_get`). Lines with a colon but no TAB are read
    too. The ``HDR,`` and ``End`` lines are skipped.
    """
    result = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("HDR") or line.strip() == "End":
            continue
        if "\t" in line:
            key, value = line.split("\t", 1)
            key = key.rstrip(":")
        elif ":" in line:
            key, value = line.split(":", 1)
            key, value = key.strip(), value.strip()
        else:
            continue
        if key.strip():
            result[key] = value
    return result


#: Keys whose values decide how frames are read: each must be a whole number.
NUMERIC_KEYS = (SCAN_X, SCAN_Y, FRAMES_IN_ACQUISITION, FRAMES_PER_TRIGGER, COUNTER_DEPTH)


def check_numbers(hdr: dict[str, str], name) -> None:
    """Warn once per key whose value is not a whole number >= 0 (it is then ignored)."""
    for prefix in NUMERIC_KEYS:
        key = next((k for k in hdr if k.strip().lower().startswith(prefix.lower())), None)
        if key is None:
            continue
        text, value = hdr[key].strip(), hdr_int(hdr, prefix)
        if value is None or value < 0:
            warnings.warn(
                f"{name}: .hdr key {key!r} is {text[:40]!r}, not a whole number; it is ignored",
                MIBWarning,
                stacklevel=4,
            )
        elif text.split()[0] != str(value):  # e.g. "4.0"
            warnings.warn(f"{name}: .hdr key {key!r} is {text[:40]!r}, read as {value}", MIBWarning, stacklevel=4)


def hdr_get(hdr: dict[str, str] | None, prefix: str) -> str | None:
    """Value of the first key starting with ``prefix`` (case-insensitive)."""
    if not hdr:
        return None
    prefix = prefix.lower()
    for key, value in hdr.items():
        if key.strip().lower().startswith(prefix):
            return value.strip()
    return None


def hdr_int(hdr: dict[str, str] | None, prefix: str) -> int | None:
    """Integer value of a ``.hdr`` key, ``None`` when missing or not a number."""
    value = hdr_get(hdr, prefix)
    if value is None:
        return None
    words = value.split()
    if not words or len(words[0]) > 12:  # nothing real has more digits
        return None
    try:
        return int(words[0])
    except ValueError:
        pass
    try:
        number = float(words[0])  # "4.0" from some software versions
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def hdr_settings(hdr: dict[str, str] | None) -> dict[str, str]:
    """What microscopists log from a ``.hdr``, as stated (missing keys left out): the start time
    (the Merlin PC's local time), chip mode, gain, thresholds, sensor bias, chip type, readout
    system and software version."""
    keys = {
        "started": "Time and Date Stamp",
        "chip_mode": "Chip Mode",
        "gain": "Gain",
        "thresholds_keV": "Thresholds",
        "bias": "Sensor Bias",
        "polarity": "Sensor Polarity",
        "chip_type": "Chip Type",
        "readout": "Readout System",
        "software_version": "Software Version",
    }
    return {name: hdr_get(hdr, key) for name, key in keys.items() if hdr_get(hdr, key)}
