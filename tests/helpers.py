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
