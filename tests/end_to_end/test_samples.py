"""Every real sample file: values, shapes and the figures of docs/format.md §14."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import read_scan, reference_raw, reference_read

from rsciio_mib_plugin import MIBProperties, file_reader, load_mib_data

PROCESSED = [
    "Single_1_Frame_CounterDepth_1_Rows_256",
    "Single_1_Frame_CounterDepth_6_Rows_256",
    "Single_1_Frame_CounterDepth_12_Rows_256",
    "Single_1_Frame_CounterDepth_24_Rows_256",
    "Single_9_Frame_CounterDepth_1_Rows_256",
    "Single_9_Frame_CounterDepth_6_Rows_256",
    "Single_9_Frame_CounterDepth_12_Rows_256",
    "Single_9_Frame_CounterDepth_24_Rows_256",
    "Quad_1_Frame_CounterDepth_1_Rows_256",
    "Quad_1_Frame_CounterDepth_6_Rows_256",
    "Quad_1_Frame_CounterDepth_12_Rows_256",
    "Quad_1_Frame_CounterDepth_24_Rows_256",
    "Quad_9_Frame_CounterDepth_1_Rows_256",
    "Quad_9_Frame_CounterDepth_6_Rows_256",
    "Quad_9_Frame_CounterDepth_12_Rows_256",
    "Quad_9_Frame_CounterDepth_24_Rows_256",
    "001_4x2_6bit",
    "002_4x2_6bit_roi128",
    "test_1bit_notRAW_1frame",
    "test_6bit_notRAW_1frame",
    "test_12bit_notRAW_1frame",
    "test_24bit_notRAW_1frame",
]

# docs/format.md §14: (frame bytes, frames, frame-0 sum, frame-0 max, argmax (row, col))
FIGURES = {
    "Single_1_Frame_CounterDepth_1_Rows_256": (65920, 1, 2398, 1, (0, 0)),
    "Single_1_Frame_CounterDepth_1_Rows_256RAW": (8576, 1, 2394, 1, (0, 0)),
    "Single_1_Frame_CounterDepth_6_Rows_256": (65920, 1, 24336, 63, (1, 134)),
    "Single_1_Frame_CounterDepth_12_Rows_256": (131456, 1, 28911, 2239, (108, 200)),
    "Single_1_Frame_CounterDepth_24_Rows_256": (262528, 1, 29416, 2255, (108, 200)),
    "Single_9_Frame_CounterDepth_1_Rows_256RAW": (8576, 9, 2390, None, None),
    "Quad_1_Frame_CounterDepth_1_Rows_256": (262912, 1, 10331, 1, (0, 0)),
    "Quad_1_Frame_CounterDepth_1_Rows_256RAW": (33536, 1, 10348, None, None),
    "Quad_1_Frame_CounterDepth_6_Rows_256": (262912, 1, 115263, 63, (2, 287)),
    "Quad_1_Frame_CounterDepth_12_Rows_256": (525056, 1, 845907, 4093, (12, 286)),
    "Quad_1_Frame_CounterDepth_24_Rows_256": (1049344, 1, 778764, 4095, (188, 347)),
    "001_4x2_6bit": (65920, 8, 448386, 63, (73, 19)),
    "002_4x2_6bit_roi128": (33152, 8, 364514, 63, (17, 1)),
}

SCAN_SHAPES = {"001_4x2_6bit": (2, 4), "002_4x2_6bit_roi128": (2, 4)}


def _frames(data: np.ndarray) -> np.ndarray:
    return data.reshape((-1,) + data.shape[-2:])


@pytest.mark.parametrize("name", PROCESSED)
def test_processed_equals_numpy_reference(samples, name):
    path = samples / f"{name}.mib"
    expected, headers = reference_read(path)
    data = read_scan(path)
    assert data.dtype == expected.dtype and data.dtype.isnative
    np.testing.assert_array_equal(_frames(data), expected)
    n = expected.shape[0]
    scan = SCAN_SHAPES.get(name, (n,) if n > 1 else ())
    assert data.shape == scan + expected.shape[1:]
    stack = load_mib_data(path, return_mmap=False)  # frames as stored, one frame too
    assert stack.shape == expected.shape
    np.testing.assert_array_equal(stack, expected)

    # file_reader flips rows (Merlin display orientation) unless asked not to.
    (d,) = file_reader(path)
    np.testing.assert_array_equal(_frames(d["data"]), expected[:, ::-1, :])
    assert d["original_metadata"]["mib_plugin"]["flip_y"] is True
    (d,) = file_reader(str(path), flip_y=False)
    np.testing.assert_array_equal(_frames(d["data"]), expected)
    assert d["original_metadata"]["mib_plugin"]["flip_y"] is False

    # lazy equals eager; the memmap view keeps the file's dtype
    lazy = read_scan(path, lazy=True)
    np.testing.assert_array_equal(lazy.compute(), data)
    np.testing.assert_array_equal(load_mib_data(path, lazy=True, return_mmap=False).compute(), stack)
    mm, mm_headers = load_mib_data(path, return_headers=True)
    np.testing.assert_array_equal(mm, stack)
    assert mm.dtype.byteorder in (">", "|")
    assert mm_headers.reshape(-1)[0] == headers[0].rstrip(b"\x00")


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figures_of_mib_format_section_14(samples, name):
    frame_bytes, frames, total, peak, where = FIGURES[name]
    prop = MIBProperties.from_path(samples / f"{name}.mib")
    assert prop.geometry.frame_bytes == frame_bytes
    assert prop.number_of_frames_in_file == frames
    first = _frames(load_mib_data(samples / f"{name}.mib", return_mmap=False))[0]
    assert int(first.sum()) == total
    if peak is not None:
        assert first.max() == peak
        assert np.unravel_index(np.argmax(first), first.shape) == where


def test_roi_is_256_wide_128_tall(samples):
    (d,) = file_reader(samples / "002_4x2_6bit_roi128.mib")
    assert d["data"].shape == (2, 4, 128, 256)
    sig = [a for a in d["axes"] if not a["navigate"]]
    assert [(a["name"], a["size"]) for a in sig] == [("ky", 128), ("kx", 256)]
    nav = [a for a in d["axes"] if a["navigate"]]
    assert [(a["name"], a["size"]) for a in nav] == [("y", 2), ("x", 4)]


def test_pixel_trigger_scan_shape_from_timestamps(samples):
    (d,) = file_reader(samples / "001_4x2_6bit.mib")
    info = d["original_metadata"]["mib_plugin"]
    assert d["data"].shape[:2] == (2, 4)
    assert "timestamps" in info["navigation_shape_rule"]
    assert info["navigation_shape_details"]["timestamps"]["line_length"] == 4


def test_jittery_quad_24bit_is_a_stack(samples):
    # 10 ns jitter fooled the built-in reader into a 3x3 scan (docs/format.md §10).
    (d,) = file_reader(samples / "Quad_9_Frame_CounterDepth_24_Rows_256.mib")
    assert d["data"].shape == (9, 512, 512)


@pytest.mark.parametrize("name", ["Single_9_Frame_CounterDepth_1_Rows_256", "Quad_9_Frame_CounterDepth_1_Rows_256"])
def test_raw_agrees_with_processed_acquisition(samples, name):
    raw = load_mib_data(samples / f"{name}RAW.mib", return_mmap=False)
    processed = load_mib_data(samples / f"{name}.mib", return_mmap=False)
    assert raw.shape == processed.shape and raw.dtype == processed.dtype == np.uint8
    a, b = raw.sum(0).ravel().astype(float), processed.sum(0).ravel().astype(float)
    assert np.corrcoef(a, b)[0, 1] > 0.99
    if raw.shape[-1] == 512:
        # Each quadrant (chip) of the RAW assembly matches the same quadrant.
        for rows in (slice(0, 256), slice(256, 512)):
            for cols in (slice(0, 256), slice(256, 512)):
                qa = raw.sum(0)[rows, cols].ravel().astype(float)
                qb = processed.sum(0)[rows, cols].ravel().astype(float)
                assert np.corrcoef(qa, qb)[0, 1] > 0.99


@pytest.mark.parametrize(
    "name, depth",
    [
        ("Single_1_Frame_CounterDepth_1_Rows_256RAW", 1),
        ("Single_9_Frame_CounterDepth_1_Rows_256RAW", 1),
        ("Quad_1_Frame_CounterDepth_1_Rows_256RAW", 1),
        ("Quad_9_Frame_CounterDepth_1_Rows_256RAW", 1),
        ("test_1bit_RAW_1frame", 1),
        ("test_6bit_RAW_1frame", 6),
        ("test_12bit_RAW_1frame", 12),
        ("test_24bit_RAW_1frame", 24),
    ],
)
def test_raw_equals_spec_reference(samples, name, depth):
    path = samples / f"{name}.mib"
    data = read_scan(path)
    expected = reference_raw(path, depth)
    dtype = {1: np.uint8, 6: np.uint8, 12: np.uint16, 24: np.uint32}[depth]
    assert data.dtype == dtype
    np.testing.assert_array_equal(_frames(data), expected)
    np.testing.assert_array_equal(read_scan(path, lazy=True).compute(), data)
    np.testing.assert_array_equal(load_mib_data(path, return_mmap=False), expected)
    if name.startswith("test_"):
        assert data.shape == (512, 512)


def test_metadata_of_a_real_file(samples):
    (d,) = file_reader(samples / "Quad_1_Frame_CounterDepth_12_Rows_256.mib")
    md = d["metadata"]
    assert md["General"]["title"] == "Quad_1_Frame_CounterDepth_12_Rows_256"
    assert md["General"]["original_filename"] == "Quad_1_Frame_CounterDepth_12_Rows_256.mib"
    assert md["General"]["date"] == "2021-04-15"
    assert md["General"]["time_zone"] == "UTC"
    assert md["Signal"]["signal_type"] == "electron_diffraction"
    assert md["Acquisition_instrument"]["dwell_time"] == pytest.approx(0.001)
    det = md["Acquisition_instrument"]["TEM"]["Detector"]["Diffraction"]
    assert det["exposure_time"] == pytest.approx(0.001)
    assert det["counter_depth"] == 12
    assert det["thresholds"][:2] == [2.0, 511.0]
    assert det["gain"] == "SLGM" and det["chip_mode"] == "SPM" and det["bias"] == 120.0
    assert det["physical_pixel_size"] == 55e-6
    om = d["original_metadata"]
    assert om["hdr_file"]["Counter Depth (number)"] == "12"
    assert om["frame_header"]["pixel_type"] == "U16"
    assert om["mib_properties"]["assembly_size"] == "quad"
    # keys as the Merlin software writes them, dots included, as the built-in reader keeps them
    assert om["hdr_file"]["Chip Type (Medipix 3.0, Medipix 3.1, Medipix 3RX)"] == "Medipix 3RX"
    assert md["Acquisition_instrument"]["TEM"]["physical_pixel_size"] == 55e-6


def test_hs_load_gives_electron_diffraction_and_saves_zspy(samples, tmp_path):
    import hyperspy.api as hs

    import rsciio_mib_plugin

    path = samples / "001_4x2_6bit.mib"
    s = hs.load(path, file_format=rsciio_mib_plugin)
    assert type(s).__name__ == "ElectronDiffraction2D"
    assert s.axes_manager.navigation_shape == (4, 2)
    assert s.axes_manager.signal_shape == (256, 256)
    assert s.metadata.General.FileIO.Number_0.io_plugin == "rsciio_mib_plugin"
    lazy = hs.load(path, file_format=rsciio_mib_plugin, lazy=True, navigation_shape=(4, 2))
    assert type(lazy).__name__ == "LazyElectronDiffraction2D"
    np.testing.assert_array_equal(lazy.data.compute(), s.data)
    for signal, name in ((s, "eager.zspy"), (lazy, "lazy.zspy")):
        signal.save(tmp_path / name)
        back = hs.load(tmp_path / name)
        np.testing.assert_array_equal(back.data, s.data)
        assert back.metadata.Signal.signal_type == "electron_diffraction"
        assert back.original_metadata.get_item("hdr_file.Software Version") == "0.76.1.101"
        rule = "mib_plugin.navigation_shape_rule"
        assert back.original_metadata.get_item(rule) == signal.original_metadata.get_item(rule)
