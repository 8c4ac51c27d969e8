"""Large temporaries kept in the heap while blocks are converted under dask's allocator settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from rsciio_mib_plugin.conversion import allocations


class _FakeLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture
def libc(monkeypatch):
    fake = _FakeLibc()
    monkeypatch.setattr(allocations, "_glibc", lambda: fake)
    return fake


def test_nothing_changed_where_glibc_adapts_by_itself(monkeypatch, libc):
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    with allocations.kept_allocations():
        pass
    assert libc.calls == []


def test_unreadable_environment_left_alone(monkeypatch, libc):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "a lot")
    with allocations.kept_allocations():
        pass
    assert libc.calls == []


def test_thresholds_raised_then_set_back_to_the_environment(monkeypatch, libc):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    with allocations.kept_allocations():
        assert libc.calls == [("mallopt", -3, 32 << 20), ("mallopt", -1, 64 << 20)]
    assert libc.calls[2:] == [("mallopt", -1, 65536), ("mallopt", -3, 128 * 1024), ("malloc_trim", 0)]


def test_concurrent_blocks_restore_once_when_the_last_ends(monkeypatch, libc):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "262144")
    inside, release = threading.Barrier(3, timeout=10), threading.Event()

    def block():
        with allocations.kept_allocations():
            inside.wait()
            release.wait(10)

    threads = [threading.Thread(target=block) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait()
    assert len(libc.calls) == 2  # raised once for both
    release.set()
    for t in threads:
        t.join(10)
    assert libc.calls[2:] == [("mallopt", -1, 65536), ("mallopt", -3, 262144), ("malloc_trim", 0)]
    assert allocations._running == 0


def test_an_error_in_the_block_still_restores(monkeypatch, libc):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    with pytest.raises(RuntimeError), allocations.kept_allocations():
        raise RuntimeError("the block failed")
    assert libc.calls[-1] == ("malloc_trim", 0)


_FAULTS = """
import json, resource, threading
import numcodecs, numpy as np
from rsciio_mib_plugin.conversion.allocations import kept_allocations

chunk = np.random.default_rng(0).poisson(2, size=(10, 256, 256)).astype("u2")
codec = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.BITSHUFFLE)
found = {}

def encode(name, kept):
    start = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    if kept:
        with kept_allocations():
            for _ in range(40):
                codec.encode(chunk)
    else:
        for _ in range(40):
            codec.encode(chunk)
    found[name] = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - start

for name, kept in (("before", False), ("kept", True), ("after", False)):
    t = threading.Thread(target=encode, args=(name, kept))  # off the main thread, as in a worker
    t.start()
    t.join()
print(json.dumps(found))
"""


@pytest.mark.skipif(
    allocations._glibc() is None,
    reason="the C library is not glibc (macOS, Windows, musl): kept_allocations changes nothing there, as tested above",
)
def test_page_faults_of_blosc_chunks_under_dask_settings():
    """Blosc's per-chunk buffers, off the main thread, with dask's MALLOC_TRIM_THRESHOLD_: page
    faults counted by the kernel (no timing), with and without the kept allocations."""
    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_="65536")
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    run = subprocess.run([sys.executable, "-c", _FAULTS], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    faults = json.loads(run.stdout)
    # 40 chunks of 1.3 MB: each one's buffers are fresh pages (about 250 faults a chunk) unless kept
    assert faults["before"] > 4000
    assert faults["kept"] < faults["before"] / 4
    assert faults["after"] > 4000  # the environment's setting is back once the block is done


def test_an_in_process_pass_keeps_them_from_its_first_block_to_its_last(monkeypatch, libc, tmp_path):
    """``convert`` run inside a dask task (the environment fixed): raised once for all its blocks."""
    import functools

    import numpy as np

    from rsciio_mib_plugin import convert, write_mib
    from rsciio_mib_plugin.conversion import archive
    from rsciio_mib_plugin.conversion.blocks import BlockPlan

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.setattr(archive, "BlockPlan", functools.partial(BlockPlan, block_bytes=1 << 16))
    frames = np.random.default_rng(0).integers(0, 60, (6, 8, 32, 256), dtype=np.uint16)
    path = write_mib(tmp_path / "scan.mib", frames, hdr={"ScanX": 8, "ScanY": 6})
    for threads in (1, 2):
        libc.calls.clear()
        convert(path, tmp_path / f"out{threads}", threads=threads)
        assert [c[0] for c in libc.calls] == ["mallopt", "mallopt", "mallopt", "mallopt", "malloc_trim"]
