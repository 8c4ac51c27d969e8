"""Findings of the adversarial run (issue 11): each recipe, and its neighbours."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from conftest import edit_header

from rsciio_mib_plugin import MIBFormatError, MIBWarning, file_reader, load_mib_data, write_mib
from rsciio_mib_plugin.format.mpx import mpx_message

FRAME = (16, 256)
HEADER = 384


def frame_bytes(path, depth_bytes=2):
    return HEADER + depth_bytes * FRAME[0] * FRAME[1]


@pytest.fixture
def scan(make_mib):
    return make_mib(frame=FRAME)


def run_python(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=cwd, timeout=300
    )


# --- 1. a file that shrinks while it is read -----------------------------------------


SHRINK = """
    import os, sys
    import numpy as np
    import rsciio_mib_plugin.reader.frames as read
    from rsciio_mib_plugin import MIBFormatError, load_mib_data, write_mib

    path = write_mib("big.mib", np.ones((64, 256, 256), np.uint16), hdr=False)
    size = os.path.getsize(path)
    original = read.decode_frames
    calls = []

    def shrinking(*args, **kwargs):
        if not calls:  # the file is cut short after the first block was read
            os.truncate(path, size // 3)
        calls.append(1)
        return original(*args, **kwargs)

    read.decode_frames = shrinking
    read.BLOCK_BYTES = 1 << 20
    for lazy in (False, True):
        calls.clear()
        os.truncate(path, 0)
        write_mib(path, np.ones((64, 256, 256), np.uint16), hdr=False)
        try:
            out = load_mib_data(path, lazy=lazy, return_mmap=False, chunks=(8, 256, 256))
            out = out.compute(scheduler="threads") if lazy else out
        except MIBFormatError as err:
            print("MIBFormatError:", err)
        else:
            print("no error", out.shape)
"""


def test_file_shortened_while_reading_is_an_error_not_a_signal(tmp_path):
    done = run_python(SHRINK, tmp_path)
    assert done.returncode == 0, done.stderr  # a SIGBUS would end it with -7
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("MIBFormatError:") and "file shortened while reading" in line and "frame" in line


def test_file_shortened_before_the_evidence_is_read(tmp_path):
    data = np.ones((40,) + FRAME, np.uint8)
    path = write_mib(tmp_path / "s.mib", data, hdr=False)
    from rsciio_mib_plugin import MIBProperties

    prop = MIBProperties.from_path(path)
    os.truncate(path, 10 * (HEADER + FRAME[0] * FRAME[1]) + 100)
    with pytest.raises(MIBFormatError, match="file shortened while reading"):
        file_reader(path, mib_prop=prop)


def test_short_reads_that_are_not_the_end_of_the_file_are_completed(scan, monkeypatch):
    """A ``preadv`` may return fewer bytes than asked without the file having ended."""
    path, data = scan
    real = os.preadv
    shorts = []

    def short_preadv(fd, buffers, offset):
        if len(buffers) > 1 and len(shorts) < 3:  # the first scattered reads stop half way
            shorts.append(offset)
            for rest in buffers[len(buffers) // 2 :]:
                np.asarray(rest)[...] = 0xAB  # nothing of the file there yet
            return real(fd, buffers[: len(buffers) // 2], offset)
        return real(fd, buffers, offset)

    monkeypatch.setattr(os, "preadv", short_preadv)
    np.testing.assert_array_equal(load_mib_data(path, return_mmap=False).reshape(data.shape), data)
    assert len(shorts) == 1  # the whole file is one read of 12 frames
    np.testing.assert_array_equal(file_reader(path)[0]["data"].reshape(data.shape), data[..., ::-1, :])
    assert len(shorts) == 2


def test_without_positioned_reads_as_on_windows(scan, monkeypatch, tmp_path):
    """Where ``os.pread``/``os.preadv`` do not exist, files are read by seek and read under a lock."""
    path, data = scan
    expected = file_reader(path)[0]
    monkeypatch.delattr(os, "pread")
    monkeypatch.delattr(os, "preadv")
    np.testing.assert_array_equal(load_mib_data(path, return_mmap=False).reshape(data.shape), data)
    got = file_reader(path, lazy=True)[0]
    np.testing.assert_array_equal(got["data"].compute(scheduler="threads", num_workers=4), expected["data"])
    assert got["metadata"]["General"]["time"] == expected["metadata"]["General"]["time"]
    from rsciio_mib_plugin import MIBProperties

    prop = MIBProperties.from_path(path)
    os.truncate(path, frame_bytes(path) * 5 + 100)  # after it was opened
    with pytest.raises(MIBFormatError, match="file shortened while reading"):
        file_reader(path, mib_prop=prop)


# --- 2. numbers out of range --------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, message",
    [
        (b",0,0,0,", b",99999999999999999999,0,0,", "counter"),
        (b"1000000ns", b"9" * 320 + b"ns", "exposure"),
        (b",0.001000,", b",1e400,", "exposure in s"),
        (b",0.001000,", b",nan,", "exposure in s"),
        (b"MQ1,000001,", b"MQ1,99999999999999999999999,", "frame number"),
    ],
)
def test_huge_numbers_are_format_errors(tmp_path, old, new, message):
    data = np.ones((6,) + FRAME, np.uint8)
    path = write_mib(tmp_path / "n.mib", data, hdr=False)
    for frame in range(1) if old.startswith(b"MQ1,") else range(6):
        edit_header(path, frame, old, new)
    with pytest.raises(MIBFormatError, match=message):
        out = file_reader(path)
        out[0]["data"].sum()


def test_year_3000_times_are_not_wrapped(tmp_path):
    from rsciio_mib_plugin.cli.report import describe

    data = np.ones((4,) + FRAME, np.uint8)
    path = write_mib(tmp_path / "t.mib", data, hdr=False)
    for frame in range(4):
        edit_header(path, frame, b",2024-07-02T", b",3000-07-02T")
    report = describe(path)
    assert report["first_timestamp"].startswith("3000-07-02") and "1831" not in str(report)
    with pytest.raises(ValueError, match="timestamps"):
        write_mib(tmp_path / "w.mib", data, timestamps=np.array(["3000-01-01"] * 4, dtype="datetime64[s]"))


# --- 3 and 4. the writer ------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"exposure": float("nan")}, "exposure"),
        ({"exposure": float("inf")}, "exposure"),
        ({"first_number": 1.5}, "first_number"),
        ({"counter_depth": True}, "counter_depth"),
        ({"counter_depth": 13}, "counter_depth"),
        ({"counter": -1}, "counter"),
        ({"data": np.full((2,) + FRAME, 1.7)}, "data"),
        ({"data": np.full((2,) + FRAME, 70, np.uint8), "counter_depth": 6}, "data"),
        ({"hdr": "yes"}, "hdr"),
    ],
)
def test_writer_validates_before_touching_the_old_file(tmp_path, kwargs, message):
    path = write_mib(tmp_path / "old.mib", np.ones((3,) + FRAME, np.uint8))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    kwargs = {"data": np.ones((2,) + FRAME, np.uint8), **kwargs}
    with pytest.raises((ValueError, TypeError), match=message):
        write_mib(path, **kwargs)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_writer_failing_half_way_leaves_the_old_file_and_no_temporary(tmp_path):
    """A real write error half way (the file-size limit of the process, as a full disk would):
    the old file is kept whole and no temporary is left."""
    path = write_mib(tmp_path / "old.mib", np.ones((3,) + FRAME, np.uint8))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    limit = 3 * (15 + HEADER + FRAME[0] * FRAME[1])  # the new file stops after three of its five frames
    done = run_python(
        f"""
        import resource, signal
        import numpy as np
        from rsciio_mib_plugin import write_mib
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        try:
            write_mib({str(path)!r}, np.zeros((5,) + {FRAME!r}, np.uint8), mpx=True)
        except OSError as err:
            print("failed:", err)
        """,
        tmp_path,
    )
    assert "failed:" in done.stdout and "File too large" in done.stdout, done.stdout + done.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_writer_keeps_file_mode_and_refuses_hdr_names(tmp_path):
    path = write_mib(tmp_path / "m.mib", np.ones((1,) + FRAME, np.uint8))
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()
    with pytest.raises(ValueError, match="filename.*hdr"):
        write_mib(tmp_path / "m.hdr", np.ones((1,) + FRAME, np.uint8))
    assert path.with_suffix(".hdr").read_bytes().startswith(b"HDR,")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_hyperspy_save_over_an_existing_file_is_atomic(tmp_path):
    import hyperspy.api as hs

    path = write_mib(tmp_path / "old.mib", np.ones((3,) + FRAME, np.uint8))
    before = path.read_bytes()
    s = hs.signals.Signal2D(np.full((2,) + FRAME, 3, np.uint8))
    with pytest.raises(ValueError, match="counter_depth"):
        s.save(path, overwrite=True, counter_depth=5)
    assert path.read_bytes() == before
    s.save(path, overwrite=True)
    np.testing.assert_array_equal(load_mib_data(path, return_mmap=False), s.data[..., ::-1, :])


# --- 5. series keep the file asked for ------------------------------------------------


def test_series_always_holds_the_named_file(tmp_path):
    frames = np.arange(9 * FRAME[0] * FRAME[1], dtype=np.uint32).reshape((9,) + FRAME) % 64
    path = write_mib(tmp_path / "scan.mib", frames[:3].astype(np.uint8), hdr=False, first_number=1)
    write_mib(tmp_path / "scan1.mib", frames[3:6].astype(np.uint8), hdr=False, first_number=4)
    write_mib(tmp_path / "scan2.mib", frames[6:].astype(np.uint8), hdr=False, first_number=7)
    out = load_mib_data(path, series=True, return_mmap=False)
    np.testing.assert_array_equal(out, frames.astype(np.uint8))


# --- 6 and 7. what the reader decides is said -------------------------------------------


def test_counters_not_split_are_explained(tmp_path):
    data = np.ones((8,) + FRAME, np.uint8)
    path = write_mib(tmp_path / "c.mib", data, counter=[0, 1] * 4, hdr={"Active Counters": "Both"})
    edit_header(path, 5, b",1,0,0,", b",7,0,0,")
    with pytest.warns(MIBWarning, match="not split by counter.*do not repeat"):
        (d,) = file_reader(path)
    assert d["original_metadata"]["mib_plugin"]["navigation_shape_details"]["counters"]["split"] is False


@pytest.mark.parametrize("value", ["abc", "twelve", "-3", "4.5"])
def test_hdr_values_that_are_not_numbers_are_warned_by_key(scan, value):
    path, data = scan
    hdr = path.with_suffix(".hdr")
    hdr.write_bytes(hdr.read_bytes().replace(b"ScanX:\t4", b"ScanX:\t" + value.encode()))
    with pytest.warns(MIBWarning, match=rf"'ScanX' is '{value}', not a whole number"):
        file_reader(path)


def test_hdr_integral_float_is_read_with_a_note(scan):
    path, data = scan
    hdr = path.with_suffix(".hdr")
    hdr.write_bytes(hdr.read_bytes().replace(b"ScanX:\t4", b"ScanX:\t4.0"))
    with pytest.warns(MIBWarning, match=r"'ScanX' is '4.0', read as 4"):
        (d,) = file_reader(path, flip_y=False)
    np.testing.assert_array_equal(d["data"], data)


# --- 8. hostile MPX captures --------------------------------------------------------------


@pytest.mark.parametrize("length", [2, 3, 4, 5, (1 << 20) + 10, 10**9])
def test_hostile_hdr_lengths_in_captures(tmp_path, length):
    data = np.ones((3,) + FRAME, np.uint8)
    capture = write_mib(tmp_path / "c.mib", data, mpx=True).read_bytes()
    hostile = b"MPX," + f"{length:010d}".encode() + b",HDR," + capture[19:]
    with pytest.raises(MIBFormatError, match="HDR message|MPX|frame header"):
        load_mib_data(hostile, return_mmap=False)


def test_capture_frame_prefix_checked_on_every_frame(tmp_path):
    data = np.ones((4,) + FRAME, np.uint8)
    body = [mpx_message(m) for m in _frames_of(write_mib(tmp_path / "f.mib", data, hdr=False).read_bytes(), 4)]
    body[2] = b"MPX,9999999999," + body[2][15:]
    path = tmp_path / "cap.mib"
    path.write_bytes(b"".join(body))
    for source in (path, path.read_bytes()):
        with pytest.raises(MIBFormatError, match="frame 2.*MPX message prefix"):
            load_mib_data(source, return_mmap=False)
    np.testing.assert_array_equal(load_mib_data(path, return_mmap=False, last_frame=2), data[:2])


def _frames_of(raw: bytes, n: int) -> list[bytes]:
    size = len(raw) // n
    return [raw[i * size : (i + 1) * size] for i in range(n)]


# --- 9, 10, 13. chunks -------------------------------------------------------------------


def test_chunks_read_only_their_rows(scan, monkeypatch):
    path, data = scan
    reads = []
    original = os.preadv

    def recording(fd, buffers, offset):
        reads.append(sum(memoryview(b).nbytes for b in buffers))
        return original(fd, buffers, offset)

    monkeypatch.setattr(os, "preadv", recording)  # every local read of pixels is one
    lazy = load_mib_data(path, lazy=True, return_mmap=False, navigation_shape=(4, 3), chunks=(1, 2, 8, 256))
    np.testing.assert_array_equal(lazy.compute(scheduler="sync"), data)
    assert max(reads) == 8 * 256 * 2  # 8 rows of one frame, never the whole frame


def test_absurd_chunks_are_merged_or_refused(scan):
    path, data = scan
    with pytest.warns(MIBWarning, match="chunks.*under 4096 bytes"):
        lazy = load_mib_data(path, lazy=True, return_mmap=False, navigation_shape=(4, 3), chunks=(1, 1, 1, 1))
    assert lazy.chunksize == (1, 1, 8, 256)
    np.testing.assert_array_equal(lazy.compute(), data)
    for chunks in (0, (0, 1, 16, 256), (1, 1, 16, -3)):
        with pytest.raises(ValueError, match="chunks"):
            load_mib_data(path, lazy=True, return_mmap=False, chunks=chunks)


def test_lazy_compute_prints_nothing(tmp_path):
    code = """
        import numpy as np, gc
        from rsciio_mib_plugin import load_mib_data, write_mib
        path = write_mib("x.mib", np.ones((40, 256, 256), np.uint16), hdr=False)
        for _ in range(3):
            lazy = load_mib_data(path, lazy=True, return_mmap=False, chunks=(4, 256, 256))
            print(int(lazy.sum(axis=0).compute(scheduler="threads").sum()))
            del lazy
            gc.collect()
    """
    done = run_python(code, tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.split() == ["2621440"] * 3


@pytest.mark.parametrize("kind", ["fifo", "directory", "dev-zero", "empty"])
def test_special_paths_are_refused_by_name(tmp_path, kind):
    path = {"fifo": tmp_path / "f.mib", "directory": tmp_path, "dev-zero": "/dev/zero", "empty": ""}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    with pytest.raises((ValueError, OSError), match="`path`") as info:
        load_mib_data(path)
    assert not isinstance(info.value, FileNotFoundError)


# --- 11. every header read is checked --------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, field",
    [
        (b",01,0256,0016,U16,", b",02,0128,0032,U16,", "number of chips"),
        (b",0256,0016,U16,", b",0128,0032,U16,", "image width"),
        (b",U16,   1x1,", b",U16,   Nx1,", "layout"),
        (b"ns,12,", b"ns,24,", "counter depth"),
    ],
)
def test_a_middle_frame_of_another_kind_is_an_error(scan, old, new, field):
    path, data = scan
    edit_header(path, 5, old, new)
    for kwargs in ({"return_mmap": False}, {"lazy": True, "return_mmap": False}):
        with pytest.raises(MIBFormatError, match=f"frame 5.*{field}"):
            out = load_mib_data(path, **kwargs)
            out.compute() if hasattr(out, "compute") else out
    with pytest.raises(MIBFormatError, match=f"frame 5.*{field}"):
        load_mib_data(path.read_bytes(), return_mmap=False)
    np.testing.assert_array_equal(load_mib_data(path, return_mmap=False, last_frame=5), data.reshape(-1, *FRAME)[:5])


# --- 12. unregister before the table exists ------------------------------------------------


def test_unregister_before_the_plugin_table_exists(tmp_path):
    path = write_mib(tmp_path / "u.mib", np.ones((2,) + FRAME, np.uint8))
    code = f"""
        import rsciio_mib_plugin as p
        p.unregister()
        import hyperspy.api as hs
        print(hs.load({str(path)!r}).metadata.General.FileIO.Number_0.io_plugin)
        p.register()
        print(hs.load({str(path)!r}).metadata.General.FileIO.Number_0.io_plugin)
    """
    done = run_python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["rsciio.quantumdetector", "rsciio_mib_plugin"]


# --- 14. series open in linear time ---------------------------------------------------------


def test_series_of_many_files_lists_the_folder_a_bounded_number_of_times(tmp_path, monkeypatch):
    data = np.ones((1,) + FRAME, np.uint8)
    for i in range(300):
        write_mib(tmp_path / f"s{i:04d}.mib", data, hdr=False, first_number=i + 1)
    listings = []
    original = os.listdir  # pathlib's iterdir lists through it too
    monkeypatch.setattr(os, "listdir", lambda *a: listings.append(a) or original(*a))
    out = load_mib_data(tmp_path / "s0000.mib", series=True, return_mmap=False)
    assert out.shape == (300,) + FRAME
    assert len(listings) <= 2


# --- 16. a missing optional module is one line ---------------------------------------------


def test_missing_module_is_one_line(capsys):
    """A URL whose fsspec backend is not installed (gcs:// needs gcsfs): one line, saying what to install."""
    from rsciio_mib_plugin.cli import main

    assert main(["info", "gcs://bucket/x.mib"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "install gcsfs" in err


# --- 17. warnings with true numbers, once ------------------------------------------------------


def test_renumbered_frames_are_not_negative_losses(tmp_path):
    data = np.ones((6,) + FRAME, np.uint8)
    path = write_mib(tmp_path / "r.mib", data, hdr=False, first_number=20)
    edit_header(path, 5, b"MQ1,000025,", b"MQ1,000003,")
    with pytest.warns(MIBWarning) as caught:
        load_mib_data(path, return_mmap=False)
    text = " ".join(str(w.message) for w in caught)
    assert "do not count up" in text and "read in file order" in text
    assert "lost" not in text and not re.search(r"-\d+ frame", text)  # no negative losses claimed


def test_interrupted_scan_is_warned_once_with_the_kept_shape(tmp_path):
    import hyperspy.api as hs

    data = np.ones((20, 32) + FRAME, np.uint8)
    path = write_mib(tmp_path / "i.mib", data, hdr={"ScanY": 48, "Frames in Acquisition": 48 * 32})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = hs.load(path)
    ours = [str(w.message) for w in caught if issubclass(w.category, MIBWarning)]
    assert len(ours) == 1, ours
    assert "keeping 20 complete lines" in ours[0] and s.axes_manager.navigation_shape == (32, 20)
