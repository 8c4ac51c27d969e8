"""Synthetic files written by ``write_mib`` read back exactly, in every configuration."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import read_scan, reference_raw, reference_read

from rsciio_mib_plugin import MIBFormatError, MIBProperties, file_reader, load_mib_data, write_mib
from rsciio_mib_plugin.format.frame_header import parse_header

DTYPES = {1: np.uint8, 6: np.uint8, 12: np.uint16, 24: np.uint32}


def frames(shape, depth, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 1 << depth, size=shape, dtype=np.uint64).astype(DTYPES[depth])


@pytest.mark.parametrize("depth", [1, 6, 12, 24])
@pytest.mark.parametrize(
    "frame", [(256, 256), (128, 256), (64, 256), (512, 512), (514, 514)], ids=lambda s: f"{s[0]}x{s[1]}"
)
@pytest.mark.parametrize("scan", [(), (5,), (3, 4)], ids=lambda s: "x".join(map(str, s)) or "single")
@pytest.mark.parametrize("hdr", [True, False], ids=["hdr", "nohdr"])
def test_processed_round_trip(tmp_path, depth, frame, scan, hdr):
    data = frames(scan + frame, depth)
    path = write_mib(tmp_path / "scan.mib", data, counter_depth=depth, hdr=hdr)
    expected_scan = scan if hdr else ((int(np.prod(scan)),) if scan else ())
    out = read_scan(path)
    assert out.shape == expected_scan + frame and out.dtype == DTYPES[depth]
    stack = load_mib_data(path, return_mmap=False)  # frames as stored
    assert stack.shape == (max(1, int(np.prod(scan))),) + frame
    np.testing.assert_array_equal(out.reshape(data.shape), data)
    # an independent numpy reading of the bytes agrees
    ref, _ = reference_read(path)
    np.testing.assert_array_equal(ref.reshape(data.shape), data)
    np.testing.assert_array_equal(stack.reshape(out.shape), out)
    lazy = read_scan(path, lazy=True)
    np.testing.assert_array_equal(lazy.compute(), out)


@pytest.mark.parametrize("depth", [1, 6, 12, 24])
@pytest.mark.parametrize("frame", [(256, 256), (512, 512), (514, 514)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_raw_round_trip(tmp_path, depth, frame):
    data = frames((2, 3) + frame, depth, seed=depth)
    if frame == (514, 514):
        data[..., 256:258, :] = 0  # the gap holds no pixels in RAW
        data[..., :, 256:258] = 0
    path = write_mib(tmp_path / "raw.mib", data, counter_depth=depth, raw=True)
    prop = MIBProperties.from_path(path)
    assert prop.raw and prop.header.pixel_type == "R64" and prop.counter_depth == depth
    out = read_scan(path)
    assert out.dtype == DTYPES[depth]
    np.testing.assert_array_equal(out, data)
    np.testing.assert_array_equal(read_scan(path, lazy=True).compute(), data)
    np.testing.assert_array_equal(load_mib_data(path, return_mmap=False), data.reshape((-1,) + frame))
    if frame != (514, 514):
        np.testing.assert_array_equal(reference_raw(path, depth).reshape(data.shape), data)


def test_written_header_is_merlin_like(tmp_path):
    path = write_mib(tmp_path / "q.mib", frames((512, 512), 12))
    raw = path.read_bytes()[:768]
    text = raw.rstrip(b"\x00")
    assert text.startswith(b"MQ1,000001,00768,04,0512,0512,U16,   2x2,0F,")
    assert text.endswith(b",MQ1A," + text.split(b",MQ1A,")[1]) and text.endswith(b",12,")
    assert len(text.split(b",")) == 139  # quad header fields incl. the trailing empty one
    header = parse_header(raw)
    assert header.thresholds[:2] == (2.0, 511.0) and len(header.dacs) == 4
    assert header.exposure_ns == 1_000_000 and header.counter_depth == 12
    hdr = path.with_suffix(".hdr").read_bytes()
    assert len(hdr) == 2048 and hdr.startswith(b"HDR,\t\r\n") and b"\r\nEnd\t" in hdr


def test_truncated_file_drops_incomplete_frame_and_line(tmp_path):
    data = frames((3, 4, 256, 256), 12)
    path = write_mib(tmp_path / "cut.mib", data)
    frame_bytes = 384 + 2 * 256 * 256
    with open(path, "r+b") as f:
        f.truncate(frame_bytes * 10 + 1000)  # 10 whole frames + part of the 11th
    with pytest.warns(UserWarning) as record:
        (d,) = file_reader(path, flip_y=False)
    text = " ".join(str(w.message) for w in record)
    assert "1000 bytes are an incomplete frame" in text
    assert "keeping 2 complete lines" in text and "dropping the 2 frames" in text
    assert d["data"].shape == (2, 4, 256, 256)
    np.testing.assert_array_equal(d["data"], data[:2])
    info = d["original_metadata"]["mib_plugin"]
    assert info["navigation_shape_details"]["incomplete_line_frames"] == 2
    assert info["trailing_bytes_ignored"] == 1000
    # every complete frame stays reachable
    with pytest.warns(UserWarning):
        everything = load_mib_data(path, return_mmap=False, navigation_shape=None, first_frame=0, last_frame=10)
    np.testing.assert_array_equal(everything, data.reshape(12, 256, 256)[:10])


def test_fewer_frames_than_one_line_is_a_stack(tmp_path):
    data = frames((3, 4, 64, 256), 6)
    path = write_mib(tmp_path / "short.mib", data)
    with open(path, "r+b") as f:
        f.truncate((384 + 64 * 256) * 3)
    with pytest.warns(UserWarning, match="less than one line"):
        out = read_scan(path)
    assert out.shape == (3, 64, 256)
    np.testing.assert_array_equal(out, data.reshape(12, 64, 256)[:3])


def test_pixel_trigger_without_hdr_uses_timestamps(tmp_path):
    # 5 x 3 scan, 1 ms frames with +-30 ns jitter and an 8 us pause at line starts
    rng = np.random.default_rng(1)
    periods = 1_000_000 + rng.integers(-30, 30, size=14)
    periods[[4, 9]] += 8_000
    times = np.r_[0, np.cumsum(periods)] + 1_700_000_000_000_000_000
    data = frames((3, 5, 64, 256), 6)
    path = write_mib(
        tmp_path / "px.mib", data, timestamps=times, hdr={"ScanX": None, "ScanY": None, "Frames per Trigger": 1}
    )
    (d,) = file_reader(path, flip_y=False)
    assert d["data"].shape == (3, 5, 64, 256)
    np.testing.assert_array_equal(d["data"], data)
    path.with_suffix(".hdr").unlink()
    (d,) = file_reader(path, flip_y=False)
    assert d["data"].shape == (3, 5, 64, 256)
    assert d["original_metadata"]["mib_plugin"]["navigation_shape_rule"] == "frame timestamps (line gaps)"


def test_single_readout_pause_is_not_a_scan(tmp_path):
    periods = np.full(11, 1_000_000)
    periods[6] += 50_000  # one stretched frame, not a line structure
    times = np.r_[0, np.cumsum(periods)]
    path = write_mib(tmp_path / "pause.mib", frames((12, 64, 256), 6), timestamps=times, hdr=False)
    (d,) = file_reader(path)
    assert d["data"].shape == (12, 64, 256)
    assert "not whole lines" in d["original_metadata"]["mib_plugin"]["navigation_shape_rule"]
    periods[[3, 9]] += 50_000  # long periods, but not once per line
    path = write_mib(
        tmp_path / "pause.mib", frames((12, 64, 256), 6), timestamps=np.r_[0, np.cumsum(periods)], hdr=False
    )
    (d,) = file_reader(path)
    assert d["data"].shape == (12, 64, 256)
    assert "do not recur" in d["original_metadata"]["mib_plugin"]["navigation_shape_rule"]


def test_upper_case_mib_and_hdr(tmp_path):
    data = frames((2, 3, 64, 256), 12)
    path = write_mib(tmp_path / "SCAN.MIB", data)
    assert path.with_suffix(".HDR").exists()
    (d,) = file_reader(path, flip_y=False)
    assert d["data"].shape == (2, 3, 64, 256)
    assert "hdr_file" in d["original_metadata"]


@pytest.mark.parametrize("raw", [False, True])
def test_headers_without_mq1a(tmp_path, raw):
    # Older software wrote no MQ1A block: RAW takes its depth from the .hdr (§2.4).
    data = frames((2, 3, 256, 256), 12)
    path = write_mib(tmp_path / "old.mib", data, raw=raw, mq1a=False)
    prop = MIBProperties.from_path(path)
    assert prop.header.utc_timestamp is None and prop.counter_depth == (12 if raw else None)
    (d,) = file_reader(path, flip_y=False)
    np.testing.assert_array_equal(d["data"], data)
    assert "time_zone" not in d["metadata"]["General"]
    assert d["metadata"]["Acquisition_instrument"]["dwell_time"] == pytest.approx(0.001)


def test_raw_without_any_depth_is_an_error(tmp_path):
    path = write_mib(tmp_path / "old.mib", frames((2, 256, 256), 6), raw=True, mq1a=False, hdr=False)
    with pytest.raises(MIBFormatError, match="counter depth"):
        load_mib_data(path)


def test_raw_metadata_records_the_decoding(tmp_path):
    path = write_mib(tmp_path / "raw.mib", frames((2, 512, 512), 1), counter_depth=1, raw=True)
    (d,) = file_reader(path)
    assert d["metadata"]["Acquisition_instrument"]["TEM"]["Detector"]["Diffraction"]["raw"] is True
    assert "R64 1-bit" in d["original_metadata"]["mib_plugin"]["raw_decoding"]
    assert "quad" in d["original_metadata"]["mib_plugin"]["raw_decoding"]
    words = load_mib_data(path)  # the memmap of undecoded 64-bit words
    assert words.dtype == np.dtype(">u8") and words.shape == (2, 512 * 512 // 64)


def test_old_day_first_frame_times(tmp_path):
    # Files before ~2018 wrote "DD/MM/YYYY hh:mm:ss" and no MQ1A (docs/format.md §2.4).
    data = frames((2, 3, 64, 256), 6)
    path = write_mib(
        tmp_path / "old.mib", data, mq1a=False, hdr={"ScanX": None, "ScanY": None, "Frames per Trigger": 1}
    )
    path.write_bytes(path.read_bytes().replace(b"2024-07-02 ", b"02/07/2024 "))
    (d,) = file_reader(path, flip_y=False)
    np.testing.assert_array_equal(d["data"], data.reshape(6, 64, 256))
    assert d["metadata"]["General"]["date"] == "2024-07-02"
    assert d["metadata"]["General"]["time"] == "12:46:43.000000"
    # unreadable frame times leave the frames as a stack, they do not fail the load
    path.write_bytes(path.read_bytes().replace(b"02/07/2024 ", b"??/??/???? "))
    (d,) = file_reader(path, flip_y=False)
    assert d["data"].shape == (6, 64, 256)
    assert d["original_metadata"]["mib_plugin"]["navigation_shape_rule"] == "stack (frame times unreadable)"
    assert "date" not in d["metadata"]["General"]
