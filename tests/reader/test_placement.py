"""Every frame at its scan position (issue 24): lost, repeated and out-of-order frames."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from conftest import edit_header

from rsciio_mib_plugin import MIBWarning, convert, file_reader, load_mib_data, write_mib, write_references
from rsciio_mib_plugin.reader.placement import place

FRAME = (16, 256)


def cut_frames(path, drop, out):
    """A copy of ``path`` without the frames ``drop`` (indices), its ``.hdr`` beside it when there is one."""
    raw = path.read_bytes()
    n = len(raw) // (384 + FRAME[0] * FRAME[1] * 2)
    size = len(raw) // n
    out.write_bytes(b"".join(raw[i * size : (i + 1) * size] for i in range(n) if i not in set(drop)))
    if path.with_suffix(".hdr").exists():
        shutil.copy(path.with_suffix(".hdr"), out.with_suffix(".hdr"))
    return out


def quietly(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MIBWarning)
        return function(*args, **kwargs)


@pytest.fixture
def scan(make_mib):
    """A 6 x 8 scan whose .hdr gives the shape (every frame non-zero, so a blank is a blank)."""
    return make_mib(scan=(6, 8), frame=FRAME, seed=4, high=4096, hdr={"ScanX": 8, "ScanY": 6})


def check_placed(data, full, drop):
    """Every frame present equals the frame at its position in the full file; lost ones are blank."""
    flat, expected = data.reshape((-1,) + FRAME), full.reshape((-1,) + FRAME)
    assert flat.shape == expected.shape
    for i in range(len(flat)):
        if i in drop:
            assert not flat[i].any(), f"position {i} should be blank"
        else:
            np.testing.assert_array_equal(flat[i], expected[i], err_msg=f"position {i}")


# --- the rule ------------------------------------------------------------------------------


def test_place_maps_positions_to_stored_frames():
    p = place(np.array([1, 2, 3, 5, 6, 9]), hdr_frames=10)
    assert p.positions == 9 and p.lost == ((4, 4), (7, 8)) and p.lost_count == 3
    np.testing.assert_array_equal(p.frame_of, [0, 1, 2, -1, 3, 4, -1, -1, 5])
    start = place(np.array([3, 4, 5]), hdr_frames=5)  # frames 1 and 2 never arrived
    np.testing.assert_array_equal(start.frame_of, [-1, -1, 0, 1, 2])
    assert place(np.array([3, 4, 5])).frame_of is None  # without the .hdr the first frame present is the first
    assert place(np.arange(1, 9)).frame_of is None  # counting up: file order, nothing to map
    repeated = place(np.array([1, 2, 2, 4, 3]))
    np.testing.assert_array_equal(repeated.frame_of, [0, 1, 4, 3])
    assert (repeated.repeated, repeated.out_of_order) == (1, 1)
    corrupt = place(np.r_[np.arange(1, 48), 1_000_000_001])
    assert corrupt.frame_of is None and "do not count up" in corrupt.note and corrupt.positions == 48
    assert place(np.array([7, 7, 7, 7])).note  # not counting up at all
    assert place(np.array([1, -1, 3])).note  # a number that does not parse


# --- where frames are dropped ------------------------------------------------------------------


@pytest.mark.parametrize(
    "drop",
    [[0], [0, 1, 2], [13], [20, 21, 22, 23, 24], [8, 30], [46]],
    ids=["first", "first three", "middle", "a run across a line end", "two", "next to last"],
)
def test_frames_land_at_their_positions_eager_and_lazy(scan, tmp_path, drop):
    path, full = scan
    cut = cut_frames(path, drop, tmp_path / "cut.mib")
    with pytest.warns(MIBWarning, match=rf"{len(drop)} frame\(s\) lost during acquisition"):
        (eager,) = file_reader(cut, flip_y=False)
    assert eager["data"].shape == (6, 8) + FRAME  # the scan keeps its shape
    check_placed(eager["data"], full, drop)
    mask = eager["metadata"]["Signal"]["blank_positions"]
    assert mask.shape == (6, 8) and sorted(np.flatnonzero(mask)) == sorted(drop)
    lost = eager["original_metadata"]["mib_plugin"]["frame_placement"]
    assert lost["lost_frame_count"] == len(drop) and lost["rule"] == "by frame number"
    for chunks in ("auto", (2, 3, 16, 256), (1, 8, 8, 128)):  # chunks that split lines and frames
        (lazy,) = quietly(file_reader, cut, flip_y=False, lazy=True, chunks=chunks)
        np.testing.assert_array_equal(lazy["data"].compute(), eager["data"])
    flipped = quietly(file_reader, cut)[0]["data"]
    np.testing.assert_array_equal(flipped, eager["data"][..., ::-1, :])


def test_without_hdr_with_navigation_shape_and_as_a_stack(scan, tmp_path):
    path, full = scan
    drop = [5, 17, 18]
    cut = cut_frames(path, drop, tmp_path / "cut.mib")
    cut.with_suffix(".hdr").unlink()
    placed = quietly(load_mib_data, cut, return_mmap=False, navigation_shape=(8, 6))
    assert placed.shape == (6, 8) + FRAME
    check_placed(placed, full, drop)
    stack = quietly(load_mib_data, cut, return_mmap=False)  # no shape: the positions as a stack
    check_placed(stack, full, drop)
    with pytest.warns(MIBWarning, match="a memory map shows the file as stored"):
        view = load_mib_data(cut)  # the default memory map: the file as it is
    assert view.shape == (45,) + FRAME


def test_selections_offsets_and_binning_work_on_positions(scan, tmp_path):
    path, full = scan
    drop = [9, 10]
    cut = cut_frames(path, drop, tmp_path / "cut.mib")
    part = quietly(load_mib_data, cut, return_mmap=False, first_frame=8, last_frame=16)
    check_placed(part, full.reshape(48, *FRAME)[8:16], [1, 2])
    shifted = quietly(load_mib_data, cut, return_mmap=False, sync_offset=8)
    check_placed(shifted, full.reshape(48, *FRAME)[8:], [1, 2])
    (binned,) = quietly(file_reader, cut, flip_y=False, bin_navigation=2)
    expected = full.astype(np.uint32)
    expected.reshape(48, *FRAME)[drop] = 0
    expected = expected.reshape(3, 2, 4, 2, *FRAME).sum(axis=(1, 3))
    np.testing.assert_array_equal(binned["data"], expected)
    mask = binned["metadata"]["Signal"]["blank_positions"]
    assert mask.shape == (3, 4) and np.flatnonzero(mask).tolist() == [0, 1]  # the bins of positions (1, 1), (1, 2)


def test_a_series_with_frames_lost_at_the_boundary(scan, tmp_path):
    path, full = scan
    flat = full.reshape(48, *FRAME)
    hdr = {"ScanX": 8, "ScanY": 6, "Frames in Acquisition": 48}
    write_mib(tmp_path / "s1.mib", flat[:20], hdr=hdr)
    write_mib(tmp_path / "s2.mib", flat[23:], first_number=24, hdr=False)  # frames 21-23 lost between the files
    with pytest.warns(MIBWarning, match=r"3 frame\(s\) lost during acquisition \(frame numbers 21-23\)"):
        (d,) = file_reader(tmp_path / "s1.mib", series=True, flip_y=False)
    check_placed(d["data"], full, [20, 21, 22])


def test_repeated_and_out_of_order_frames(scan, tmp_path):
    path, full = scan
    raw = path.read_bytes()
    size = len(raw) // 48
    frames = [raw[i * size : (i + 1) * size] for i in range(48)]
    order = list(range(10)) + [11, 10] + list(range(12, 30)) + [29] + list(range(30, 48))  # a swap and a repeat
    odd = tmp_path / "odd.mib"
    odd.write_bytes(b"".join(frames[i] for i in order))
    shutil.copy(path.with_suffix(".hdr"), odd.with_suffix(".hdr"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (d,) = file_reader(odd, flip_y=False)
    text = " ".join(str(w.message) for w in caught)
    assert "1 frame(s) repeat a frame number" in text and "1 frame(s) are stored out of order" in text
    np.testing.assert_array_equal(d["data"], full)
    assert "blank_positions" not in d["metadata"]["Signal"]


def test_a_corrupt_frame_number_is_bounded(tmp_path):
    """One frame numbered 1,000,000,001 in a 48-frame file: file order, warned, in bounded memory."""
    data = np.random.default_rng(1).integers(1, 4096, size=(48,) + FRAME, dtype=np.uint16)
    path = write_mib(tmp_path / "c.mib", data, hdr=False)
    edit_header(path, 47, b"MQ1,000048,", b"MQ1,1000000001,")  # the header keeps its length
    code = f"""
        import resource, warnings
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # 10**9 int64 positions would need 8 GB
        from rsciio_mib_plugin import load_mib_data
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = load_mib_data({str(path)!r}, return_mmap=False)
        print(out.shape)
        print(" ".join(str(w.message) for w in caught))
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    shape, text = done.stdout.splitlines()[:2]
    assert shape == f"(48, {FRAME[0]}, {FRAME[1]})"
    assert "do not count up" in text and "read in file order" in text


# --- everywhere a scan is built ---------------------------------------------------------------


def test_convert_and_references_place_frames(scan, tmp_path):
    import hyperspy.api as hs
    import zarr

    path, full = scan
    drop = [3, 30, 31]
    cut = cut_frames(path, drop, tmp_path / "cut.mib")
    expected = full.copy()
    expected.reshape(48, *FRAME)[drop] = 0
    quietly(convert, cut, tmp_path / "out")
    back = hs.load(tmp_path / "out" / "cut.zspy")
    np.testing.assert_array_equal(back.data, expected[..., ::-1, :])
    present = np.delete(full.reshape(48, *FRAME), drop, axis=0)
    mean = back.metadata.Summaries.mean_pattern
    np.testing.assert_allclose(mean, present.mean(axis=0)[::-1], rtol=1e-6)  # over the frames present
    assert back.metadata.Signal.blank_positions.sum() == 3
    refs = quietly(write_references, cut, tmp_path / "ref.json")
    assert refs["chunks"] == 45  # no chunk for a lost position
    group = zarr.open_group(
        zarr.storage.FSStore("reference://", fo=str(tmp_path / "ref.json"), remote_protocol="file"), mode="r"
    )
    np.testing.assert_array_equal(group["data"][...], expected)


def test_info_lists_lost_frames(scan, tmp_path, capsys):
    from rsciio_mib_plugin.cli import main

    path, _ = scan
    cut = cut_frames(path, [4, 5, 6], tmp_path / "cut.mib")
    assert main(["info", str(cut), "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert report["lost_frames"] == 3 and report["lost_frame_numbers"] == "5-7"
    assert main(["info", str(cut)]) == 0
    assert "lost          3 frame(s), numbers 5-7" in capsys.readouterr().out


def test_real_sample_with_a_frame_cut_out(samples, tmp_path):
    """001_4x2_6bit: a pixel-triggered 4 x 2 scan (shape from the frame times); frame 2 cut out."""
    path = samples / "001_4x2_6bit.mib"
    full = load_mib_data(path, return_mmap=False)
    raw = path.read_bytes()
    size = len(raw) // 8
    cut = tmp_path / "001_4x2_6bit.mib"
    cut.write_bytes(raw[: 2 * size] + raw[3 * size :])
    shutil.copy(path.with_suffix(".hdr"), cut.with_suffix(".hdr"))
    with pytest.warns(MIBWarning, match=r"1 frame\(s\) lost during acquisition \(frame numbers 3\)"):
        (d,) = file_reader(cut, flip_y=False)
    assert d["data"].shape[:2] == (2, 4)  # the shape still found, from interpolated frame times
    flat = d["data"].reshape(8, *full.shape[1:])
    assert not flat[2].any()
    np.testing.assert_array_equal(np.delete(flat, 2, axis=0), np.delete(full, 2, axis=0))


def test_frames_out_of_order_inside_a_counting_stretch_are_reported(scan, tmp_path):
    """Losses are found by bisection; a swap between frames whose neighbours count up is then only
    seen when the frames are read (their numbers are checked against their positions)."""
    path, full = scan
    raw = path.read_bytes()
    size = len(raw) // 48
    frames = [raw[i * size : (i + 1) * size] for i in range(48)]
    order = list(range(30)) + [31, 30] + list(range(32, 40)) + list(range(41, 48))  # a swap, then 41 lost
    odd = tmp_path / "odd.mib"
    odd.write_bytes(b"".join(frames[i] for i in order))
    shutil.copy(path.with_suffix(".hdr"), odd.with_suffix(".hdr"))
    with pytest.warns(
        MIBWarning,
        match=r"stored frame 30 holds frame number 32, not 31: frames before it were lost or are stored out of order, and 2 frame\(s\)",
    ):
        quietly_lost = file_reader(odd, flip_y=False)
    check_placed(
        np.delete(quietly_lost[0]["data"].reshape(48, *FRAME), [30, 31], axis=0),
        np.delete(full.reshape(48, *FRAME), [30, 31], axis=0),
        [38],
    )


def test_both_counters_with_a_lost_frame(tmp_path):
    """Two counters, one frame of counter 0 lost: both datasets keep their shape, the blank where it belongs."""
    rng = np.random.default_rng(9)
    c0, c1 = (rng.integers(1, 4096, (3, 4) + FRAME, dtype=np.uint16) for _ in range(2))
    frames = np.stack([c0, c1], axis=2).reshape((-1,) + FRAME)
    hdr = {"Active Counters": "Both", "ScanX": 4, "ScanY": 3, "Frames in Acquisition": 24}
    path = write_mib(tmp_path / "both.mib", frames, counter=np.tile([0, 1], 12), hdr=hdr)
    cut = cut_frames(path, [10], tmp_path / "cut.mib")  # position (1, 1) of counter 0
    a, b = quietly(file_reader, cut, flip_y=False)
    np.testing.assert_array_equal(b["data"], c1)
    check_placed(a["data"], c0, [5])
    assert np.flatnonzero(a["metadata"]["Signal"]["blank_positions"]).tolist() == [5]


def test_a_capture_of_the_data_port_with_lost_frames(scan, tmp_path):
    path, full = scan
    capture = write_mib(tmp_path / "capture.mib", full, mpx=True, hdr={"ScanX": 8, "ScanY": 6})
    raw = capture.read_bytes()
    hdr_message = 15 + int(raw[4:14]) - 1
    size = (len(raw) - hdr_message) // 48
    messages = [raw[hdr_message + i * size : hdr_message + (i + 1) * size] for i in range(48)]
    cut = tmp_path / "cut.mib"
    cut.write_bytes(raw[:hdr_message] + b"".join(m for i, m in enumerate(messages) if i not in (7, 8)))
    with pytest.warns(MIBWarning, match=r"2 frame\(s\) lost during acquisition \(frame numbers 8-9\)"):
        (d,) = file_reader(cut, flip_y=False)
    check_placed(d["data"], full, [7, 8])
