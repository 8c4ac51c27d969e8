"""Scale: dask.distributed clusters, constant-time lazy opening, progress bars.

Speed itself is measured in benchmarks/, never asserted here.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import rsciio_mib_plugin.reader.frames as read_module
from rsciio_mib_plugin import file_reader, load_mib_data, write_mib


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale")
    rng = np.random.default_rng(3)
    processed = rng.integers(0, 4096, size=(6, 7, 64, 256), dtype=np.uint16)
    raw = rng.integers(0, 2, size=(2, 3, 512, 512), dtype=np.uint8)
    return {
        "processed": (write_mib(folder / "p.mib", processed), processed),
        "raw": (write_mib(folder / "r.mib", raw, counter_depth=1, raw=True), raw),
    }


def test_lazy_arrays_compute_on_a_local_cluster(files):
    import distributed

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        for path, data in files.values():
            nav = data.shape[1::-1]
            lazy = load_mib_data(
                path, lazy=True, return_mmap=False, chunks=(1, 2) + data.shape[2:], navigation_shape=nav
            )
            assert lazy.npartitions > 1
            np.testing.assert_array_equal(client.compute(lazy).result(), data)
            total = client.compute(lazy.sum(axis=(0, 1), dtype=np.uint64)).result()
            np.testing.assert_array_equal(total, data.sum(axis=(0, 1), dtype=np.uint64))
            (d,) = file_reader(path, lazy=True)
            np.testing.assert_array_equal(d["data"].compute(), data[..., ::-1, :])  # through the client


def test_chunk_tasks_carry_paths_not_handles(files):
    path, _ = files["processed"]
    lazy = load_mib_data(path, lazy=True, return_mmap=False)
    found = False
    for task in dict(lazy.__dask_graph__()).values():
        if isinstance(task, tuple) and task and task[0] is read_module.read_chunk:
            reader = task[1]
            assert all(isinstance(seg.path, str) for seg in reader.segments) and reader.buffer is None
            assert not any(isinstance(arg, (np.ndarray, np.memmap)) for arg in task[1:])
            found = True
    assert found


def test_lazy_open_reads_no_frame_headers_but_first_and_last(files, monkeypatch):
    """Opening a scan lazily reads the first frame header and the last, nothing else (no evidence pass)."""
    path, data = files["processed"]
    frames = data.shape[0] * data.shape[1]
    frame_bytes = path.stat().st_size // frames
    reads = []
    original = os.pread

    def recording(fd, length, offset):
        reads.append((offset, length))
        return original(fd, length, offset)

    monkeypatch.setattr(os, "pread", recording)
    (d,) = file_reader(path, lazy=True)
    assert d["data"].shape == data.shape
    header = 384
    last = (frames - 1) * frame_bytes
    assert reads and all(o + n <= header or last <= o and o + n <= last + header for o, n in reads), reads
    assert {o // frame_bytes for o, _ in reads} == {0, frames - 1}


def test_progress_bar_when_asked(files, capsys):
    path, data = files["processed"]
    out = load_mib_data(path, return_mmap=False, show_progressbar=True)  # asked: at any size
    np.testing.assert_array_equal(out, data.reshape((-1,) + data.shape[2:]))
    assert "frames" in capsys.readouterr().err
    load_mib_data(path, return_mmap=False, show_progressbar=False)
    file_reader(path)  # None: only loads over 256 MB show one
    assert "frames" not in capsys.readouterr().err


def test_progress_bar_follows_hyperspy_preference(monkeypatch):
    """``show_progressbar=None`` is HyperSpy's preference while HyperSpy is in use."""
    from hyperspy.defaults_parser import preferences

    from rsciio_mib_plugin._progress import progress_bar, wanted

    monkeypatch.setattr(preferences.General, "show_progressbar", False)
    assert not wanted(None) and progress_bar(None, 10, "frames", "x") is None
    monkeypatch.setattr(preferences.General, "show_progressbar", True)
    bar = progress_bar(None, 10, "frames", "x")
    assert wanted(None) and bar is not None
    bar.close()
    assert wanted(True) and not wanted(False)
