"""The ``.hdr`` side file of an acquisition: found beside the ``.mib`` in any case, read with a size cap."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from ..errors import MIBWarning
from ..format.hdr_file import MAX_HDR_BYTES, check_numbers, parse_hdr_text


def find_hdr(mib_path) -> Path | None:
    """The ``.hdr`` beside ``mib_path`` (``scan.hdr``, ``scan.HDR``, ``SCAN.Hdr`` ...), or ``None``."""
    return find_hdr_of_any([mib_path])


def find_hdr_of_any(mib_paths: list) -> Path | None:
    """The ``.hdr`` of the first of ``mib_paths`` that has one.

    The usual spellings are tried first; otherwise each folder is listed once
    (any case of ``.hdr`` and of the stem), so a series of thousands of files
    opens in linear time.
    """
    listings: dict[Path, dict[str, Path]] = {}
    for mib_path in map(Path, mib_paths):
        for suffix in (".hdr", ".HDR", ".Hdr"):
            candidate = mib_path.with_suffix(suffix)
            if candidate.is_file():
                return candidate
        if mib_path.parent not in listings:
            try:
                entries = list(mib_path.parent.iterdir())
            except OSError:
                entries = []
            listings[mib_path.parent] = {e.stem.lower(): e for e in entries if e.suffix.lower() == ".hdr"}
        found = listings[mib_path.parent].get(mib_path.stem.lower())
        if found is not None and found.is_file():
            return found
    return None


def read_hdr(path: str | os.PathLike) -> dict[str, str] | None:
    """Read a ``.hdr`` side file; on any problem warn once and return ``None``.

    The file is decoded as Latin-1 (older keys contain ``µ``, §9.1) and read
    with a size cap, so a huge or binary file cannot exhaust memory.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_HDR_BYTES + 1)
    except OSError as err:
        warnings.warn(
            f"{path}: cannot read the .hdr side file ({err}); using the frame headers only", MIBWarning, stacklevel=3
        )
        return None
    if len(raw) > MAX_HDR_BYTES:
        warnings.warn(
            f"{path}: the .hdr side file is larger than {MAX_HDR_BYTES} bytes, so it is "
            "not a Merlin acquisition header; using the frame headers only",
            MIBWarning,
            stacklevel=3,
        )
        return None
    if b"\x00" in raw.rstrip(b"\x00 "):
        warnings.warn(
            f"{path}: the .hdr side file contains binary data; using the frame headers only", MIBWarning, stacklevel=3
        )
        return None
    parsed = parse_hdr_text(raw.decode("latin-1"))
    if not parsed:
        warnings.warn(
            f"{path}: the .hdr side file has no 'Key:<TAB>Value' lines; using the frame headers only",
            MIBWarning,
            stacklevel=3,
        )
        return None
    check_numbers(parsed, path)
    return parsed
