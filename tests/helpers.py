"""Small helpers the tests share: files written as the Merlin software writes them, bounded waits,
and ending a process the test started."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np


def write_two_counters(path: Path, seed: int = 0) -> Path:
    """A 4x3 scan acquired with both counters ("Active Counters: Both"): 24 frames of 32x256, the
    counters alternating frame by frame."""
    from rsciio_mib_plugin import write_mib

    frames = np.random.default_rng(seed).integers(0, 60, size=(24, 32, 256), dtype=np.uint8)
    hdr = {"Active Counters": "Both", "ScanX": 4, "ScanY": 3, "Frames in Acquisition": 24}
    return write_mib(path, frames, counter=np.tile([0, 1], 12), hdr=hdr)


def with_flyback(data: np.ndarray, k: int, where: str, value: int = 999) -> tuple[np.ndarray, np.ndarray]:
    """``(ny, nx, ...)`` frames with ``k`` flyback frames of ``value`` added to every line, at its
    ``"start"`` or ``"end"``; the lines' frames and their exposures (s; the flyback frames twice as
    long, all with a few microseconds of jitter)."""
    ny, nx = data.shape[:2]
    fly = np.full((ny, k) + data.shape[2:], value, dtype=data.dtype)
    lines = np.concatenate([fly, data] if where == "start" else [data, fly], axis=1)
    exposures = np.full(lines.shape[:2], 0.001)
    if where == "start":
        exposures[:, :k] = 0.002
    else:
        exposures[:, nx:] = 0.002
    rng = np.random.default_rng(1)
    exposures += rng.integers(-3, 4, size=exposures.shape) * 1e-6  # realistic jitter
    return lines, exposures


def write_series(folder: Path, data: np.ndarray, sizes: list[int], gap_after: int | None = None) -> list[Path]:
    """The frames of ``data`` (scan axes first) as a series ``scan1.mib``, ``scan2.mib``, ... of
    ``sizes`` frames each, without ``.hdr``; 5 frame numbers skipped after file ``gap_after``."""
    from rsciio_mib_plugin import write_mib

    flat = data.reshape((-1,) + data.shape[-2:])
    paths, start, number = [], 0, 1
    for i, size in enumerate(sizes):
        path = folder / f"scan{i + 1}.mib"
        write_mib(path, flat[start : start + size], first_number=number, hdr=False)
        paths.append(path)
        start += size
        number += size + (5 if gap_after == i else 0)
    return paths


def grow(target: Path, source: Path, pieces: int = 6, pause: float = 0.05, stop_at: int | None = None):
    """Write ``source`` into ``target`` a piece at a time in a thread (its .hdr first); the thread."""
    if source.with_suffix(".hdr").exists():
        target.with_suffix(".hdr").write_bytes(source.with_suffix(".hdr").read_bytes())
    raw = source.read_bytes()[:stop_at]
    edges = np.linspace(0, len(raw), pieces + 1).astype(int)

    def run():
        with open(target, "wb") as f:
            for a, b in zip(edges[:-1], edges[1:]):
                f.write(raw[a:b])
                f.flush()
                time.sleep(pause)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def until(condition, seconds: float = 10) -> bool:
    """Whether ``condition()`` became true within ``seconds`` (looked at every 50 ms)."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def sigterm(proc: subprocess.Popen, timeout: float = 30) -> tuple:
    """End a process the test started with SIGTERM, as a scheduler would: its ``(stdout, stderr)``.
    It is killed (by its own id) if it has not ended within ``timeout`` seconds."""
    try:
        proc.send_signal(signal.SIGTERM)
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
