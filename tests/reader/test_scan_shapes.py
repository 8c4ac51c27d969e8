"""Scan shapes of real acquisitions: flyback frames, counters, series, triggers."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import read_scan
from helpers import with_flyback, write_series

from rsciio_mib_plugin import MIBWarning, file_reader, load_mib_data, write_mib
from rsciio_mib_plugin.reader.scan import flyback_from_exposures, line_length_from_times

FRAME = (32, 256)  # small ROI frames keep the files small


def scan_frames(ny, nx, seed=0):
    """Frames whose first pixel is their scan position (y * 100 + x)."""
    data = np.random.default_rng(seed).integers(0, 50, size=(ny, nx) + FRAME, dtype=np.uint16)
    data[..., 0, 0] = np.arange(ny)[:, None] * 100 + np.arange(nx)[None, :]
    return data


@pytest.mark.parametrize("where", ["start", "end"])
@pytest.mark.parametrize("k", [1, 2])
def test_line_trigger_with_flyback_frames_from_scanx_scany(tmp_path, where, k):
    data = scan_frames(6, 8)
    lines, exposures = with_flyback(data, k, where)
    total = lines.shape[0] * lines.shape[1]
    path = write_mib(
        tmp_path / "fly.mib",
        lines.reshape((-1,) + FRAME),
        exposure=exposures.ravel(),
        hdr={"ScanX": 8, "ScanY": 6, "Frames in Acquisition": total, "Frames per Trigger": 8 + k},
    )
    with pytest.warns(MIBWarning, match=f"{k} flyback frame.*{where} of each line .{6 * k} in all; exposure outliers"):
        (d,) = file_reader(path, flip_y=False)
    np.testing.assert_array_equal(d["data"], data)
    fly = d["original_metadata"]["mib_plugin"]["navigation_shape_details"]["flyback"]
    assert fly["where"] == where and fly["frames_per_line"] == k and fly["dropped_frames"] == 6 * k
    assert fly["positions_in_line"] == (list(range(k)) if where == "start" else list(range(8, 8 + k)))
    # lazy and the memmap view agree
    with pytest.warns(MIBWarning):
        lazy = read_scan(path, lazy=True)
    np.testing.assert_array_equal(lazy.compute(), data)
    view = load_mib_data(path)  # frames as stored, flyback included
    np.testing.assert_array_equal(view, lines.reshape((-1,) + FRAME))
    # an explicit navigation shape including the flyback frames loads everything
    everything = load_mib_data(path, return_mmap=False, navigation_shape=(8 + k, 6))
    np.testing.assert_array_equal(everything, lines)


def test_flyback_without_exposure_evidence_is_assumed_at_line_end(tmp_path):
    data = scan_frames(4, 5)
    lines, _ = with_flyback(data, 1, "end")
    path = write_mib(
        tmp_path / "fly.mib", lines.reshape((-1,) + FRAME), hdr={"ScanX": 5, "ScanY": 4, "Frames in Acquisition": 24}
    )
    with pytest.warns(MIBWarning, match="assumed at the end"):
        (d,) = file_reader(path, flip_y=False)
    np.testing.assert_array_equal(d["data"], data)


def test_flyback_found_from_exposures_alone(tmp_path):
    # pixel trigger, no ScanX/ScanY: the flyback frame recurs every 9 frames
    data = scan_frames(5, 8)
    lines, exposures = with_flyback(data, 1, "start")
    path = write_mib(
        tmp_path / "fly.mib",
        lines.reshape((-1,) + FRAME),
        exposure=exposures.ravel(),
        hdr={"ScanX": None, "ScanY": None, "Frames per Trigger": 1},
    )
    with pytest.warns(MIBWarning, match="flyback"):
        (d,) = file_reader(path, flip_y=False)
    np.testing.assert_array_equal(d["data"], data)
    assert (
        d["original_metadata"]["mib_plugin"]["navigation_shape_rule"]
        == "frame exposures (flyback frames once per line)"
    )
    path.with_suffix(".hdr").unlink()
    with pytest.warns(MIBWarning, match="flyback"):
        (d,) = file_reader(path, flip_y=False)
    np.testing.assert_array_equal(d["data"], data)


def test_flyback_with_interrupted_scan(tmp_path):
    data = scan_frames(6, 8)
    lines, exposures = with_flyback(data, 1, "start")
    frames = lines.reshape((-1,) + FRAME)[:40]  # 4 whole lines of 9 + 4 frames
    path = write_mib(
        tmp_path / "fly.mib",
        frames,
        exposure=exposures.ravel()[:40],
        hdr={"ScanX": 8, "ScanY": 6, "Frames in Acquisition": 54},
    )
    with pytest.warns(MIBWarning) as record:
        (d,) = file_reader(path, flip_y=False)
    np.testing.assert_array_equal(d["data"], data[:4])
    assert any("interrupted" in str(w.message) for w in record)


def test_pixel_trigger_with_realistic_jitter(tmp_path):
    # 16 x 12 scan, 0.5 ms frames +- 40 ns, 3 us extra at line changes
    rng = np.random.default_rng(5)
    periods = 500_000 + rng.integers(-40, 41, size=16 * 12 - 1)
    periods[15::16] += 3_000
    times = np.r_[0, np.cumsum(periods)] + 1_600_000_000_000_000_000
    data = scan_frames(12, 16)
    path = write_mib(
        tmp_path / "px.mib", data, timestamps=times, hdr={"ScanX": None, "ScanY": None, "Frames per Trigger": 1}
    )
    (d,) = file_reader(path, flip_y=False)
    np.testing.assert_array_equal(d["data"], data)
    info = d["original_metadata"]["mib_plugin"]
    assert info["navigation_shape_details"]["timestamps"]["line_length"] == 16


def test_line_gap_detector_on_synthetic_times():
    base = np.arange(40) * 1_000_000
    gaps = base + np.repeat(np.arange(4), 10) * 5_000
    assert line_length_from_times(gaps)[0] == 10
    jitter = base + np.random.default_rng(0).integers(-10, 10, size=40)
    assert line_length_from_times(jitter)[0] is None
    assert flyback_from_exposures(np.full(30, 1.0))[0] is None
    pattern = np.tile([2.0, 1, 1, 1, 1, 1], 5)
    assert flyback_from_exposures(pattern)[0] == (6, 0, 1)


def test_frames_per_trigger_zero_and_missing(tmp_path):
    data = scan_frames(2, 3)
    path = write_mib(tmp_path / "a.mib", data, hdr={"ScanX": None, "ScanY": None, "Frames per Trigger": 0})
    (d,) = file_reader(path, flip_y=False)
    assert d["data"].shape == (6,) + FRAME
    path = write_mib(
        tmp_path / "b.mib",
        data,
        hdr={"ScanX": None, "ScanY": None, "Frames per Trigger": None, "Frames in Acquisition": None},
    )
    (d,) = file_reader(path, flip_y=False)
    assert d["data"].shape == (6,) + FRAME


def test_both_counters_split_into_two_datasets(tmp_path):
    c0, c1 = scan_frames(3, 4, seed=1), scan_frames(3, 4, seed=2)
    # the manual's order: counter 1 first, then counter 0, for every trigger
    frames = np.stack([c1, c0], axis=2).reshape((-1,) + FRAME)
    counters = np.tile([1, 0], 12)
    path = write_mib(
        tmp_path / "both.mib",
        frames,
        counter=counters,
        hdr={"Active Counters": "Both", "ScanX": 4, "ScanY": 3, "Frames in Acquisition": 24},
    )
    datasets = file_reader(path, flip_y=False)
    assert len(datasets) == 2
    by_title = {d["metadata"]["General"]["title"]: d for d in datasets}
    np.testing.assert_array_equal(by_title["both (counter 1)"]["data"], c1)
    np.testing.assert_array_equal(by_title["both (counter 0)"]["data"], c0)
    assert by_title["both (counter 0)"]["original_metadata"]["mib_plugin"]["counter"] == 0
    assert load_mib_data(path).shape == (24,) + FRAME  # frames as stored unless asked to split
    lazy = load_mib_data(path, lazy=True, return_mmap=False, counters="split")
    assert isinstance(lazy, list) and len(lazy) == 2
    np.testing.assert_array_equal(lazy[1].compute(), c0.reshape((-1,) + FRAME))
    views = load_mib_data(path, counters="split", navigation_shape=(4, 3))
    np.testing.assert_array_equal(views[0], c1)
    # "join" keeps the interleaved frames as one sequence in file order
    with pytest.warns(MIBWarning, match="last 12 frames are not loaded"):
        (d,) = file_reader(path, flip_y=False, counters="join")
    np.testing.assert_array_equal(d["data"], frames[:12].reshape(3, 4, *FRAME))
    with pytest.raises(ValueError, match="counters"):
        file_reader(path, counters="both")


def test_counters_split_without_hdr_on_request(tmp_path):
    c0, c1 = scan_frames(1, 6, seed=1)[0], scan_frames(1, 6, seed=2)[0]
    frames = np.stack([c0, c1], axis=1).reshape((-1,) + FRAME)
    path = write_mib(tmp_path / "both.mib", frames, counter=np.tile([0, 1], 6), hdr=False)
    (d,) = file_reader(path, flip_y=False)  # no .hdr: one sequence
    assert d["data"].shape == (12,) + FRAME
    a, b = file_reader(path, flip_y=False, counters="split")
    np.testing.assert_array_equal(a["data"], c0)
    np.testing.assert_array_equal(b["data"], c1)


def test_alternating_crw_is_one_dataset(tmp_path):
    frames = scan_frames(1, 8)[0]
    path = write_mib(tmp_path / "crw.mib", frames, counter=np.tile([0, 1], 4), hdr={"Active Counters": "Alternating"})
    (d,) = file_reader(path)
    assert d["data"].shape == (8,) + FRAME


def test_three_file_series(tmp_path):
    data = scan_frames(3, 4)
    paths = write_series(tmp_path, data, [5, 4, 3])
    # the acquisition's .hdr (frames of the whole scan) sits next to the first file
    write_mib(tmp_path / "tmp.mib", data)
    (tmp_path / "tmp.hdr").rename(tmp_path / "scan1.hdr")
    (tmp_path / "tmp.mib").unlink()
    (d,) = file_reader(paths[1], series=True, flip_y=False)
    np.testing.assert_array_equal(d["data"], data)
    # one path per line: HyperSpy's NeXus reader cannot read lists of strings back
    assert d["original_metadata"]["mib_plugin"]["series_files"].split("\n") == [str(p) for p in paths]
    lazy = read_scan(paths[0], series=True, lazy=True)
    np.testing.assert_array_equal(lazy.compute(), data)
    stack = load_mib_data(paths[0], series=True, lazy=True, return_mmap=False)
    np.testing.assert_array_equal(stack.compute(), data.reshape((-1,) + FRAME))
    # a list of paths in any order does the same
    out = load_mib_data([paths[2], paths[0], paths[1]], return_mmap=False, navigation_shape=(4, 3))
    np.testing.assert_array_equal(out, data)
    with pytest.raises(ValueError, match="one file"):
        load_mib_data(paths, return_mmap=True)
    # without series=True only the one file is read: an interrupted scan of 1 line
    with pytest.warns(MIBWarning, match="keeping 1 complete lines"):
        (d,) = file_reader(paths[0], flip_y=False)
    np.testing.assert_array_equal(d["data"], data[0])


def test_series_gap_is_reported_and_left_blank(tmp_path):
    """Frames 7-11 never reached the files: the second file's frames go where their numbers say."""
    data = scan_frames(3, 4)
    paths = write_series(tmp_path, data, [6, 6], gap_after=0)
    with pytest.warns(MIBWarning, match=r"5 frame\(s\) lost during acquisition \(frame numbers 7-11\)"):
        out = load_mib_data(paths, return_mmap=False)
    flat = data.reshape((-1,) + FRAME)
    assert out.shape == (17,) + FRAME
    np.testing.assert_array_equal(out[:6], flat[:6])
    assert not out[6:11].any()
    np.testing.assert_array_equal(out[11:], flat[6:])


def test_quad_24bit_sample_is_a_stack(samples):
    (d,) = file_reader(samples / "Quad_9_Frame_CounterDepth_24_Rows_256.mib")
    assert d["data"].shape == (9, 512, 512)
    assert d["original_metadata"]["mib_plugin"]["navigation_shape_rule"].startswith("stack")


def test_one_trigger_for_the_whole_scan_uses_frame_evidence(tmp_path):
    # "Frames per Trigger" = "Frames in Acquisition": the .hdr gives no width
    periods = np.full(4 * 6 - 1, 1_000_000)
    periods[5::6] += 4_000
    times = np.r_[0, np.cumsum(periods)]
    data = scan_frames(4, 6)
    path = write_mib(
        tmp_path / "one.mib", data, timestamps=times, hdr={"ScanX": None, "ScanY": None, "Frames per Trigger": 24}
    )
    (d,) = file_reader(path, flip_y=False)
    np.testing.assert_array_equal(d["data"], data)
    # without line structure it stays a stack of every frame
    path = write_mib(tmp_path / "flat.mib", data, hdr={"ScanX": None, "ScanY": None, "Frames per Trigger": 24})
    (d,) = file_reader(path, flip_y=False)
    assert d["data"].shape == (24,) + FRAME
