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
