"""Shared fixtures: the real Merlin samples and an independent reference reader."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = Path(os.environ.get("MIB_SAMPLE_DIR", REPO.parent / "shared" / "data" / "merlin"))


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> Path:
    """The real sample files, unzipped into a temporary folder once per session.

    Skipped when the folder is missing, except under ``CI=true`` where a
    missing sample folder fails the run.
    """
    found = sorted(SAMPLE_DIR.glob("*.zip")) + sorted(SAMPLE_DIR.glob("*.mib")) if SAMPLE_DIR.is_dir() else []
    if not found:
        message = f"no Merlin sample files in {SAMPLE_DIR} (set MIB_SAMPLE_DIR to the folder of the zips)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path_factory.mktemp("merlin")
    for path in found:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as z:
                z.extractall(out)
        else:
            shutil.copy(path, out)
            if path.with_suffix(".hdr").exists():
                shutil.copy(path.with_suffix(".hdr"), out)
    return out


def synthetic(folder, name="scan.mib", scan=(3, 4), frame=(16, 256), depth=12, seed=0, high=None, **write_options):
    """Write a synthetic ``.mib`` (and ``.hdr``) from parameters; ``(path, data)``.

    Counts are uniform in ``[0, high)`` (default: the counter depth's range) from a seeded
    generator, shaped ``scan + frame``; ``write_options`` go to :func:`write_mib` (``raw``,
    ``mpx``, ``hdr``, ``exposure``, ``timestamps``, ``first_number``, ...).
    """
    from rsciio_mib_plugin import write_mib

    dtype = {1: np.uint8, 6: np.uint8, 12: np.uint16, 24: np.uint32}[depth]
    high = high or (2 if depth == 1 else 1 << depth)
    data = np.random.default_rng(seed).integers(0, high, size=tuple(scan) + tuple(frame), dtype=dtype)
    return write_mib(Path(folder) / name, data, counter_depth=depth, **write_options), data


@pytest.fixture
def make_mib(tmp_path):
    """The fixture factory: ``make_mib(name=..., scan=..., frame=..., depth=..., seed=..., **write_options)``
    writes a synthetic file into the test's folder (see :func:`synthetic`)."""

    def make(**parameters):
        return synthetic(tmp_path, **parameters)

    return make


def edit_header(path, frame: int, old: bytes, new: bytes) -> None:
    """Replace ``old`` by ``new`` in the header of ``frame`` of a processed file, keeping its length."""
    raw = bytearray(Path(path).read_bytes())
    fields = raw[:64].split(b",")
    header_bytes, width, height, kind = int(fields[2]), int(fields[4]), int(fields[5]), fields[6].decode()
    size = header_bytes + width * height * {"U08": 1, "U16": 2, "U32": 4}[kind]
    head = bytes(raw[frame * size : frame * size + header_bytes])
    if old not in head:
        raise ValueError(f"{old!r} is not in the header of frame {frame}: {head[:120]!r}")
    edited = head.replace(old, new, 1)
    raw[frame * size : frame * size + header_bytes] = edited.rstrip(b"\x00")[:header_bytes].ljust(header_bytes, b"\x00")
    Path(path).write_bytes(bytes(raw))


def reference_read(path) -> tuple[np.ndarray, list[bytes]]:
    """Processed frames read with plain numpy, independent of the package.

    Returns the frames ``(n, height, width)`` in file order, native dtype,
    and the raw headers.
    """
    raw = Path(path).read_bytes()
    fields = raw[:64].split(b",")
    header_bytes, width, height, kind = int(fields[2]), int(fields[4]), int(fields[5]), fields[6].decode()
    dtype = np.dtype({"U08": ">u1", "U16": ">u2", "U32": ">u4"}[kind])
    frame = np.dtype([("h", f"S{header_bytes}"), ("d", dtype, (height, width))])
    frames = np.frombuffer(raw, frame, count=len(raw) // frame.itemsize)
    return frames["d"].astype(dtype.newbyteorder("=")), list(frames["h"])


def reference_raw(path, depth: int) -> np.ndarray:
    """RAW frames decoded from the spec (docs/format.md §4.2, §4.5) in a few lines."""
    raw = Path(path).read_bytes()
    fields = raw[:64].split(b",")
    header_bytes, width, height, chips = int(fields[2]), int(fields[4]), int(fields[5]), int(fields[3])
    slot = {1: 1, 6: 8, 12: 16, 24: 16}[depth]
    payload = width * height * slot // 8
    n = len(raw) // (header_bytes + payload)
    out = []
    for i in range(n):
        start = i * (header_bytes + payload) + header_bytes
        words = np.frombuffer(raw[start : start + payload], ">u8").astype(np.uint64)
        k = np.arange(64 // slot, dtype=np.uint64)
        mask = np.uint64({1: 1, 6: 0x3F, 12: 0xFFF, 24: 0xFFF}[depth])
        pixels = (words[:, None] >> (k * np.uint64(slot))) & mask
        pixels = pixels.ravel()
        if depth == 24:
            hi, lo = pixels[: pixels.size // 2], pixels[pixels.size // 2 :]
            pixels = (hi << np.uint64(12)) | lo
            w = width // 2
        else:
            w = width
        img = pixels.reshape(height, w)
        if chips == 4:
            quad = np.zeros((2 * height, 512), dtype=np.uint64)
            r, j = np.arange(height)[:, None], np.arange(256)[None, :]
            quad[r, j] = img[r, 768 + j]  # chip 1, top left
            quad[r, 256 + j] = img[r, 512 + j]  # chip 2, top right
            quad[2 * height - 1 - r, 255 - j] = img[r, 256 + j]  # chip 3, rotated 180
            quad[2 * height - 1 - r, 511 - j] = img[r, j]  # chip 4, rotated 180
            img = quad
        out.append(img)
    return np.array(out)


def read_scan(path, **kwargs):
    """The data of the first dataset as ``hs.load`` shapes it (scan inferred), in file order.

    ``load_mib_data`` returns the frames as stored unless given a
    ``navigation_shape`` (as RosettaSciIO's does); tests of the scan-shape
    rules and of the readers behind them read through ``file_reader``.
    """
    from rsciio_mib_plugin import file_reader

    return file_reader(path, flip_y=False, **kwargs)[0]["data"]
