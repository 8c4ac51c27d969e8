"""The public API: inputs, keywords and the output contract."""

from __future__ import annotations

import pathlib
import pickle

import numpy as np
import pytest

import rsciio_mib_plugin
from rsciio_mib_plugin import (
    MIBFormatError,
    MIBProperties,
    file_reader,
    load_mib_data,
    parse_exposures,
    parse_timestamps,
    write_mib,
)


@pytest.fixture
def scan(make_mib):
    exposures = np.linspace(0.001, 0.0012, 12)
    path, data = make_mib(frame=(64, 256), seed=7, exposure=exposures)
    return path, data, exposures


@pytest.fixture
def quad(make_mib):
    return make_mib(name="quad.mib", scan=(5,), frame=(512, 512), depth=1, seed=3)


def test_public_api_names():
    assert set(rsciio_mib_plugin.__all__) >= {
        "file_reader",
        "load_mib_data",
        "parse_exposures",
        "parse_timestamps",
        "MIBProperties",
        "MIBFormatError",
        "write_mib",
        "register",
        "unregister",
    }
    assert issubclass(MIBFormatError, ValueError)


@pytest.mark.parametrize("kind", [str, pathlib.Path])
def test_path_types(scan, kind):
    path, data, _ = scan
    np.testing.assert_array_equal(load_mib_data(kind(path), return_mmap=False), data.reshape(12, 64, 256))
    np.testing.assert_array_equal(load_mib_data(kind(path), return_mmap=False, navigation_shape=(4, 3)), data)
    (d,) = file_reader(kind(path), flip_y=False)
    np.testing.assert_array_equal(d["data"], data)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_buffers_single_and_quad(scan, quad, kind):
    path, data, _ = scan
    buffer = kind(path.read_bytes())
    # no .hdr for a buffer: the scan shape is unknown, so frames come as a stack
    out = load_mib_data(buffer, return_mmap=False)
    np.testing.assert_array_equal(out, data.reshape(12, 64, 256))
    out = load_mib_data(buffer, return_mmap=False, navigation_shape=(4, 3))
    np.testing.assert_array_equal(out, data)
    view = load_mib_data(buffer)
    assert view.dtype == np.dtype(">u2")
    np.testing.assert_array_equal(view, data.reshape(12, 64, 256))
    qpath, qdata = quad
    np.testing.assert_array_equal(load_mib_data(kind(qpath.read_bytes()), return_mmap=False), qdata)
    with pytest.raises(ValueError, match="lazily"):
        load_mib_data(buffer, lazy=True)


def test_navigation_shape_is_hyperspy_order(scan):
    path, data, _ = scan
    out = load_mib_data(path, return_mmap=False, navigation_shape=(6, 2))
    assert out.shape == (2, 6, 64, 256)
    np.testing.assert_array_equal(out.reshape(12, 64, 256), data.reshape(12, 64, 256))
    with pytest.raises(TypeError, match="tuple"):
        load_mib_data(path, navigation_shape=[4, 3])
    with pytest.raises(ValueError, match="positive"):
        load_mib_data(path, navigation_shape=(0, 3))
    with pytest.raises(TypeError, match="integers"):
        load_mib_data(path, navigation_shape=(2.5, 3))


def test_navigation_shape_larger_than_file_is_interrupted(scan):
    path, data, _ = scan
    with pytest.warns(UserWarning, match="interrupted acquisition"):
        out = load_mib_data(path, return_mmap=False, navigation_shape=(4, 5))
    np.testing.assert_array_equal(out, data)


@pytest.mark.parametrize("first, last", [(None, None), (2, None), (None, 5), (-4, None), (3, -2), (0, 12), (11, 12)])
def test_first_last_frame_follow_slicing(scan, first, last):
    path, data, _ = scan
    flat = data.reshape(12, 64, 256)
    expected = flat[first:last]
    out = load_mib_data(path, return_mmap=False, first_frame=first, last_frame=last)
    np.testing.assert_array_equal(out.reshape(expected.shape), expected)
    lazy = load_mib_data(path, lazy=True, return_mmap=False, first_frame=first, last_frame=last)
    np.testing.assert_array_equal(lazy.compute().reshape(expected.shape), expected)


def test_frame_selection_errors(scan):
    path, _, _ = scan
    with pytest.raises(ValueError, match="select no frame"):
        load_mib_data(path, first_frame=12)
    with pytest.raises(TypeError, match="first_frame"):
        load_mib_data(path, first_frame=1.5)


def test_outputs_are_native_endian(scan):
    path, _, _ = scan
    assert load_mib_data(path, return_mmap=False).dtype.isnative
    assert load_mib_data(path, lazy=True, return_mmap=False).dtype.isnative
    (d,) = file_reader(path)
    assert d["data"].dtype.isnative
    (d,) = file_reader(path, lazy=True)
    assert d["data"].dtype.isnative


def test_lazy_default_chunks_hold_whole_frames(scan):
    path, data, _ = scan
    lazy = load_mib_data(path, lazy=True, return_mmap=False)
    assert lazy.chunks[-2:] == ((64,), (256,))
    custom = load_mib_data(path, lazy=True, return_mmap=False, chunks=(1, 2, 32, 128), navigation_shape=(4, 3))
    assert custom.chunks == ((1, 1, 1), (2, 2), (32, 32), (128, 128))
    np.testing.assert_array_equal(custom.compute(), data)
    with pytest.raises(ValueError, match="chunks"):
        load_mib_data(path, lazy=True, return_mmap=False, chunks=(1, 2, 3), navigation_shape=(4, 3))


def test_lazy_array_pickles(scan):
    path, data, _ = scan
    lazy = load_mib_data(path, lazy=True, return_mmap=False, navigation_shape=(4, 3))
    again = pickle.loads(pickle.dumps(lazy))
    np.testing.assert_array_equal(again.compute(scheduler="processes", num_workers=2), data)


def test_mmap_and_headers(scan):
    path, data, _ = scan
    stack, stack_headers = load_mib_data(path, return_headers=True)
    assert stack.shape == (12, 64, 256) and stack_headers.shape == (12,)
    assert stack_headers[0].startswith(b"MQ1,000001,")  # one frame's header, as the built-in gives it
    mm, headers = load_mib_data(path, return_headers=True, navigation_shape=(4, 3))
    assert isinstance(mm, np.memmap)
    assert mm.shape == data.shape and headers.shape == data.shape[:2]
    np.testing.assert_array_equal(mm, data)
    assert headers[1, 2].startswith(b"MQ1,000007,")
    lazy_mm = load_mib_data(path, lazy=True)
    assert isinstance(lazy_mm, np.memmap) and not lazy_mm.flags.writeable
    with pytest.raises(ValueError, match="return_mmap"):
        load_mib_data(path, return_headers=True, return_mmap=False)
    with pytest.raises(ValueError, match="w\\+"):
        load_mib_data(path, mmap_mode="w+")
    # the default copy-on-write map never reaches the file
    before = path.read_bytes()
    mm = load_mib_data(path)
    mm[0, 0, 0] = 1
    assert path.read_bytes() == before


def test_parse_exposures_and_timestamps(scan):
    path, _, exposures = scan
    _, headers = load_mib_data(path, return_headers=True)
    ms = parse_exposures(headers)
    np.testing.assert_allclose(ms, exposures * 1e3, atol=1e-6)  # whole ns in the header
    assert parse_exposures(headers, max_index=3) == ms[:3]
    assert parse_exposures(headers, max_index=-1) == ms
    assert parse_exposures(bytes(headers[0])) == [ms[0]]
    times = parse_timestamps(list(headers.ravel()), max_index=-1)
    assert len(times) == 12 and times[0].endswith("Z") and "T" in times[0]
    with pytest.raises(ValueError, match="max_index"):
        parse_exposures(headers, max_index=0)
    with pytest.raises(MIBFormatError, match="header 0"):
        parse_exposures([b"not a header"])


def test_print_info(scan, capsys):
    path, _, _ = scan
    load_mib_data(path, print_info=True)
    out = capsys.readouterr().out
    assert "Number of frames in the file/buffer: 12" in out and "Data is processed" in out
    prop = MIBProperties.from_path(path)
    assert "Header size: 384 bytes" in repr(prop)
    out = load_mib_data(path, mib_prop=prop, return_mmap=False)
    assert out.shape == (12, 64, 256)


def test_unknown_keyword_is_refused(scan):
    path, _, _ = scan
    with pytest.raises(TypeError, match="navigation_shap"):
        file_reader(path, navigation_shap=(4, 3))


def test_file_reader_dict(scan):
    path, data, exposures = scan
    (d,) = file_reader(path)
    assert set(d) >= {"data", "axes", "metadata", "original_metadata"}
    np.testing.assert_array_equal(d["data"], data[..., ::-1, :])
    assert [(a["name"], a["size"], a["navigate"], a["units"], a["scale"], a["offset"]) for a in d["axes"]] == [
        ("y", 3, True, "px", 1.0, 0.0),
        ("x", 4, True, "px", 1.0, 0.0),
        ("ky", 64, False, "px", 1.0, 0.0),
        ("kx", 256, False, "px", 1.0, 0.0),
    ]
    general = d["metadata"]["General"]
    assert general["date"] == "2024-07-02" and general["time"] == "11:46:43.000000000" and general["time_zone"] == "UTC"
    assert d["metadata"]["Acquisition_instrument"]["dwell_time"] == pytest.approx(exposures[0])
    assert d["original_metadata"]["mib_plugin"]["navigation_shape_rule"] == "hdr ScanX/ScanY"


def test_frames_in_acquisition_zero_does_not_crash(tmp_path):
    data = np.ones((6, 64, 256), np.uint8)
    path = write_mib(tmp_path / "live.mib", data, hdr={"Frames in Acquisition": 0, "Frames per Trigger": 0})
    (d,) = file_reader(path)
    assert d["data"].shape == (6, 64, 256)
    assert "zero" in d["original_metadata"]["mib_plugin"]["navigation_shape_rule"]


def test_line_trigger_hdr_without_scanx(tmp_path):
    data = np.arange(3 * 5 * 64 * 256, dtype=np.uint32).reshape(3, 5, 64, 256) % 1000
    path = write_mib(tmp_path / "line.mib", data, counter_depth=24, hdr={"ScanX": None, "ScanY": None})
    (d,) = file_reader(path, flip_y=False)
    np.testing.assert_array_equal(d["data"], data)
    assert d["original_metadata"]["mib_plugin"]["navigation_shape_rule"] == "hdr frames per trigger (line trigger)"


@pytest.mark.parametrize("chunks", ["auto", (1, 2, 8, 256), (3, 1, 24, 128)])
def test_flip_is_done_while_reading(scan, chunks):
    path, data, _ = scan
    (d,) = file_reader(path, lazy=True, chunks=chunks)
    assert len(d["data"].dask.layers) == 1  # no dask step after the reads
    np.testing.assert_array_equal(d["data"].compute(), data[..., ::-1, :])
    (d,) = file_reader(path)
    np.testing.assert_array_equal(d["data"], data[..., ::-1, :])
    assert d["data"].flags.c_contiguous


def test_lazy_arrays_compute_after_the_working_folder_changes(make_mib, tmp_path, monkeypatch):
    path, data = make_mib(frame=(16, 256))
    monkeypatch.chdir(path.parent)
    lazy = load_mib_data(path.name, lazy=True, return_mmap=False)  # a relative path
    monkeypatch.chdir(tmp_path.parent)
    np.testing.assert_array_equal(lazy.compute(), data.reshape(-1, 16, 256))
