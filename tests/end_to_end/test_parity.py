"""Drop-in parity with RosettaSciIO's built-in reader, beyond its own test suite."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import reference_read

from rsciio_mib_plugin import file_reader, load_mib_data

SAMPLES = [
    "001_4x2_6bit",
    "002_4x2_6bit_roi128",
    "Single_1_Frame_CounterDepth_12_Rows_256",
    "Single_9_Frame_CounterDepth_1_Rows_256",
    "Quad_1_Frame_CounterDepth_24_Rows_256",
    "Quad_9_Frame_CounterDepth_6_Rows_256",
    "Quad_9_Frame_CounterDepth_24_Rows_256",
]


def _plain(value):
    """Built-in values as plain Python (it keeps numpy integers in tuples)."""
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


@pytest.mark.parametrize("name", SAMPLES)
def test_original_metadata_has_every_builtin_key_and_value(samples, name):
    from rsciio.quantumdetector import file_reader as builtin_reader

    path = str(samples / f"{name}.mib")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (theirs,) = builtin_reader(path)
    (ours,) = file_reader(path)
    for group in ("mib_properties", "hdr_file"):
        mine = ours["original_metadata"][group]
        for key, value in theirs["original_metadata"][group].items():
            assert key in mine, (group, key)
            if key == "navigation_shape":
                # a deliberate difference: the shape of the data's navigation axes (array order);
                # the built-in stores its intermediate guess, (1, 1) for one frame, (1, 9) for a stack
                assert mine[key] == ours["data"].shape[:-2]
                continue
            assert _plain(mine[key]) == _plain(value), (group, key, mine[key], value)
    # what was read is the same, up to the documented differences (orientation as the built-in's)
    expected, _ = reference_read(path)
    theirs_data = np.asarray(theirs["data"]).reshape(expected.shape)
    np.testing.assert_array_equal(np.asarray(ours["data"]).reshape(expected.shape), theirs_data)


def test_load_mib_data_returns_frames_as_stored(samples):
    path = samples / "001_4x2_6bit.mib"
    for kwargs in ({}, {"return_mmap": False}, {"lazy": True, "return_mmap": False}):
        assert load_mib_data(path, **kwargs).shape == (8, 256, 256)
    data, headers = load_mib_data(path, return_headers=True)
    assert headers.shape == (8,) and headers[0].startswith(b"MQ1,000001,")
    assert load_mib_data(path, navigation_shape=(4, 2)).shape == (2, 4, 256, 256)
    one = samples / "Single_1_Frame_CounterDepth_6_Rows_256.mib"
    assert load_mib_data(one).shape == (1, 256, 256)
    assert load_mib_data(one, return_mmap=False).shape == (1, 256, 256)
    (d,) = file_reader(path)  # file_reader still finds the scan
    assert d["data"].shape == (2, 4, 256, 256)


def test_time_keeps_nanoseconds_and_distributed_warns_as_the_builtin(samples):
    from rsciio.exceptions import VisibleDeprecationWarning

    path = samples / "001_4x2_6bit.mib"
    (d,) = file_reader(path)
    assert d["metadata"]["General"]["time"] == "16:51:10.905800928"
    for value in (True, False):
        with pytest.warns(VisibleDeprecationWarning, match="`distributed` is deprecated"):
            out = load_mib_data(path, distributed=value, return_mmap=False)
        assert out.shape == (8, 256, 256)
        with pytest.warns(VisibleDeprecationWarning, match="`distributed` is deprecated"):
            file_reader(path, distributed=value)
    with warnings.catch_warnings():
        warnings.simplefilter("error", VisibleDeprecationWarning)
        load_mib_data(path)  # not passed: no warning


@pytest.mark.parametrize("ext", ["hspy", "zspy", "nxs"])
@pytest.mark.parametrize("lazy", [False, True])
def test_save_and_reload_keeps_data_metadata_and_builtin_lookups(samples, tmp_path, ext, lazy):
    import hyperspy.api as hs

    s = hs.load(samples / "001_4x2_6bit.mib", lazy=lazy)
    out = tmp_path / f"scan.{ext}"
    s.save(out)
    back = hs.load(out, nxdata_only=True) if ext == "nxs" else hs.load(out)
    np.testing.assert_array_equal(back.data, np.asarray(s.data))
    assert back.axes_manager.navigation_shape == (4, 2)
    if ext != "nxs":  # HyperSpy's NeXus reader drops General.date/time of every signal
        assert back.metadata.General.time == "16:51:10.905800928"
    assert back.metadata.Acquisition_instrument.TEM.physical_pixel_size == 55e-6
    om = back.original_metadata
    # the lookups a script written for the built-in reader makes
    assert om.mib_properties.frame_number_in_file == 8
    assert om.mib_properties.dynamic_range == "1 or 6-bit"
    assert om.mib_properties.timestamp == "2021-05-07T16:51:10.905800928Z"
    assert om.hdr_file.as_dictionary()["Chip Type (Medipix 3.0, Medipix 3.1, Medipix 3RX)"] == "Medipix 3RX"
    assert om.hdr_file.as_dictionary()["Assembly Size (NX1, 2X2)"] == "   1x1"
    assert om.mib_plugin.navigation_shape_rule == "frame timestamps (line gaps)"
    assert "MQ1A" in om.frame_header.text
    if ext != "nxs":  # HyperSpy's NeXus writer leaves out keys whose value is None
        assert om.mib_properties.quad_scale is None


@pytest.mark.parametrize("lazy", [False, True])
def test_pyxem_calibration_round(samples, lazy):
    import hyperspy.api as hs

    s = hs.load(samples / "001_4x2_6bit.mib", lazy=lazy)
    assert type(s).__name__ == ("LazyElectronDiffraction2D" if lazy else "ElectronDiffraction2D")
    assert s.calibration.physical_pixel_size == 55e-6
    s.calibration.scale = 0.01
    s.calibration.units = "nm^-1"
    s.calibration.beam_energy = 200
    s.calibration.set_camera_length_from_calibration()
    # L = pixel / tan(scale * wavelength): 55 um / (0.01 nm^-1 x 2.508 pm) = 2.193 m at 200 kV
    assert s.calibration.camera_length == pytest.approx(2.1930, rel=1e-3)
    s.calibration.convert_signal_units("mrad")
    assert s.axes_manager.signal_axes[0].units == "mrad"
    assert s.axes_manager.signal_axes[0].scale == pytest.approx(0.02508, rel=1e-3)
