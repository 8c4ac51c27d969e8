"""Scale: dask.distributed clusters, constant-time lazy opening, progress bars.

Speed itself is measured in benchmarks/, never asserted here.
"""

from __future__ import annotations

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
    path, data = files["processed"]
    calls = []
    import rsciio_mib_plugin.reader.properties as properties_module

    original = properties_module.read_header_at

    def counting(source, offset, frame):
        calls.append(frame)
        return original(source, offset, frame)

    monkeypatch.setattr("rsciio_mib_plugin.reader.properties.read_header_at", counting)
    monkeypatch.setattr("rsciio_mib_plugin.reader.load.read_headers", lambda *a, **k: pytest.fail("evidence read"))
    (d,) = file_reader(path, lazy=True)
    assert d["data"].shape == data.shape
    assert calls == [0, data.shape[0] * data.shape[1] - 1]


def test_progress_bar_on_long_eager_loads(files, monkeypatch, capsys):
    path, data = files["processed"]
    monkeypatch.setattr(read_module, "PROGRESS_BYTES", 0)
    out = load_mib_data(path, return_mmap=False, show_progressbar=True)
    np.testing.assert_array_equal(out, data.reshape((-1,) + data.shape[2:]))
    assert "frames" in capsys.readouterr().err
    load_mib_data(path, return_mmap=False, show_progressbar=False)
    assert "frames" not in capsys.readouterr().err


def test_progress_bar_follows_hyperspy_preference(files, monkeypatch, capsys):
    from hyperspy.defaults_parser import preferences

    path, _ = files["processed"]
    monkeypatch.setattr(read_module, "PROGRESS_BYTES", 0)
    monkeypatch.setattr(preferences.General, "show_progressbar", False)
    file_reader(path)
    assert "frames" not in capsys.readouterr().err
    monkeypatch.setattr(preferences.General, "show_progressbar", True)
    file_reader(path)
    assert "frames" in capsys.readouterr().err


def test_chunk_memory_is_reused_only_when_no_view_remains():
    import gc

    memory = read_module._ChunkMemory(keep=1, min_bytes=0)
    a = memory.empty((4, 8), np.uint16)
    a[...] = 1
    view = a[1:, ::2]
    del a
    gc.collect()
    b = memory.empty((4, 8), np.uint16)  # the first block is still viewed: a new one
    b[...] = 2
    assert (view == 1).all()
    del view, b
    gc.collect()
    assert len(memory._idle[64]) == 1  # one kept, the other let go
    c = memory.empty((4, 8), np.uint16)
    assert memory._idle[64] == [] and c.shape == (4, 8)


def test_lazy_chunks_survive_after_compute(files):
    path, data = files["processed"]
    lazy = load_mib_data(path, lazy=True, return_mmap=False, chunks=(1, 7, 64, 256), navigation_shape=(7, 6))
    parts = [lazy[i].compute() for i in range(6)]  # each holds pooled memory
    np.testing.assert_array_equal(np.stack(parts), data)
