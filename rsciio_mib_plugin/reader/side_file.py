"""The ``.hdr`` side file of an acquisition: found beside the ``.mib`` in any case, read with a size cap."""

from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import MIBWarning
from ..format.hdr_file import MAX_HDR_BYTES, check_numbers, parse_hdr_text
from ..sources.source import Remote


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


def read_hdr(path) -> dict[str, str] | None:
    """Read a ``.hdr`` side file (a local path or a :class:`.Remote`); on any problem warn once
    and return ``None``. A missing remote one (404, or 401/403/410 as S3 and CDNs answer) is
    ``None`` without a warning.

    The file is decoded as Latin-1 (older keys contain ``µ``, §9.1) and read
    with a size cap, so a huge or binary file cannot exhaust memory.
    """
    try:
        if isinstance(path, Remote):
            raw = path.fetch(0, MAX_HDR_BYTES + 1)
        else:
            with open(path, "rb") as f:
                raw = f.read(MAX_HDR_BYTES + 1)
    except OSError as err:
        if isinstance(path, Remote) and isinstance(err, FileNotFoundError):
            return None
        return _unused(path, f"cannot read the .hdr side file ({str(err).removeprefix(f'{path}: ')})")
    if len(raw) > MAX_HDR_BYTES:
        return _unused(
            path, f"the .hdr side file is larger than {MAX_HDR_BYTES} bytes, so it is not a Merlin acquisition header"
        )
    if b"\x00" in raw.rstrip(b"\x00 "):
        return _unused(path, "the .hdr side file contains binary data")
    parsed = parse_hdr_text(raw.decode("latin-1"))
    if not parsed:
        return _unused(path, "the .hdr side file has no 'Key:<TAB>Value' lines")
    check_numbers(parsed, str(path))
    return parsed


def _unused(path, why: str) -> None:
    warnings.warn(f"{path}: {why}; using the frame headers only", MIBWarning, stacklevel=4)
