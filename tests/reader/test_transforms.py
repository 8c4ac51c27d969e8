"""Transforms while reading (issue 17): quad chip gap, sum binning, sync offset."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest

from rsciio_mib_plugin import MIBWarning, file_reader, load_mib_data, write_mib

RNG = np.random.default_rng(17)


def gapped(data: np.ndarray, gap: int, stored: int = 0) -> np.ndarray:
    """Zero rows and columns inserted between the chips, with numpy."""
    keep = np.r_[0:256, 256 + stored : 512 + stored]
    chips = data[..., keep, :][..., :, keep]
    out = np.insert(chips, [256] * gap, 0, axis=-2)
    return np.insert(out, [256] * gap, 0, axis=-1)


def binned(data: np.ndarray, b_sig: int = 1, b_nav: int = 1, dtype=None) -> np.ndarray:
    """Reshape-sum binning with numpy, navigation axes first."""
    out = data.astype(dtype or np.uint64)
    *nav, rows, cols = out.shape
    out = out.reshape(*nav, rows // b_sig, b_sig, cols // b_sig, b_sig).sum(axis=(-3, -1))
    for axis in range(len(nav)):
        shape = out.shape[:axis] + (out.shape[axis] // b_nav, b_nav) + out.shape[axis + 1 :]
        out = out.reshape(shape).sum(axis=axis + 1)
    return out


def read(path, lazy, **kwargs):
    (d,) = file_reader(path, lazy=lazy, flip_y=False, **kwargs)
    data = d["data"].compute() if lazy else d["data"]
    return data, d


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("geometry")
    quad = RNG.integers(0, 4096, size=(2, 4, 512, 512), dtype=np.uint16)
    quad_g = RNG.integers(0, 60, size=(2, 2, 514, 514), dtype=np.uint8)
    quad_g[..., 256:258, :] = 0  # the file's gap holds no pixels
    quad_g[..., :, 256:258] = 0
    raw = RNG.integers(0, 2, size=(2, 2, 512, 512), dtype=np.uint8)
    single = RNG.integers(0, 1 << 24, size=(4, 6, 64, 256), dtype=np.uint32)
    return {
        "quad": (write_mib(folder / "quad.mib", quad), quad),
        "quad_g": (write_mib(folder / "quad_g.mib", quad_g, counter_depth=6), quad_g),
        "raw": (write_mib(folder / "raw.mib", raw, counter_depth=1, raw=True), raw),
        "raw_g": (write_mib(folder / "raw_g.mib", quad_g, counter_depth=6, raw=True), quad_g),
        "single": (write_mib(folder / "single.mib", single, counter_depth=24), single),
    }


# --- quad gap ----------------------------------------------------------------------------


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
@pytest.mark.parametrize("name, stored", [("quad", 0), ("raw", 0), ("quad_g", 2), ("raw_g", 2)])
@pytest.mark.parametrize("gap", [0, 3, 5])
def test_quad_gap_equals_numpy_insertion(files, name, stored, gap, lazy):
    path, data = files[name]
    out, d = read(path, lazy, quad_gap=gap)
    expected = gapped(data, gap, stored)
    assert out.shape == data.shape[:2] + (512 + gap, 512 + gap) and out.dtype == data.dtype
    np.testing.assert_array_equal(out, expected)
    info = d["original_metadata"]["mib_plugin"]["quad_gap"]
    assert info["pixels"] == gap and info["stored_gap"] == stored
    mask = d["metadata"]["General"]["mask"]
    assert mask.shape == out.shape[-2:] and mask.sum() == (512 + gap) ** 2 - 512**2
    assert not out[..., mask].any()
    assert [a["scale"] for a in d["axes"]] == [1.0] * 4  # the axes stay uniform


def test_quad_gap_through_hs_load_and_flipped(files):
    import hyperspy.api as hs

    path, data = files["quad"]
    s = hs.load(path, quad_gap=3, lazy=True)
    assert s.axes_manager.signal_shape == (515, 515)
    np.testing.assert_array_equal(s.data.compute(), gapped(data, 3)[..., ::-1, :])
    assert s.calibration.mask.shape == (515, 515)


def test_quad_gap_needs_quad_frames(files):
    path, _ = files["single"]
    with pytest.raises(ValueError, match="quad_gap.*needs whole quad frames.*1x1"):
        file_reader(path, quad_gap=3)
    with pytest.raises(TypeError, match="quad_gap"):
        file_reader(files["quad"][0], quad_gap=2.5)
    with pytest.raises(ValueError, match="return_mmap=False"):
        load_mib_data(files["quad"][0], quad_gap=3)


# --- binning -----------------------------------------------------------------------------


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
@pytest.mark.parametrize(
    "name, b_sig, b_nav",
    [("quad", 2, 1), ("quad", 4, 2), ("raw", 8, 2), ("single", 2, 2), ("single", 1, 2), ("quad_g", 2, 1)],
)
def test_binning_equals_numpy(files, name, b_sig, b_nav, lazy):
    path, data = files[name]
    out, d = read(path, lazy, bin_signal=b_sig, bin_navigation=b_nav)
    expected = binned(data, b_sig, b_nav)
    np.testing.assert_array_equal(out, expected)
    # the smallest type that holds the largest possible sum at the file's counter depth
    depth = {"quad": 12, "raw": 1, "single": 24, "quad_g": 6}[name]
    largest = ((1 << depth) - 1) * b_sig**2 * b_nav**2
    wide = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if np.iinfo(t).max >= largest)
    assert out.dtype == np.promote_types(wide, data.dtype)
    scales = [a["scale"] for a in d["axes"]]
    offsets = [a["offset"] for a in d["axes"]]
    assert scales == [b_nav] * 2 + [b_sig] * 2 and offsets == [(b_nav - 1) / 2] * 2 + [(b_sig - 1) / 2] * 2
    om = d["original_metadata"]["mib_plugin"]
    assert om["bin_signal"] == b_sig and om["bin_navigation"] == b_nav


def test_binning_does_not_overflow(tmp_path):
    data = np.full((2, 2, 16, 256), 4095, np.uint16)
    path = write_mib(tmp_path / "full.mib", data)
    out, _ = read(path, False, bin_signal=16, bin_navigation=2)
    assert out.dtype == np.uint32 and out.max() == 4095 * 16 * 16 * 4
    out, _ = read(path, False, bin_signal=2)
    assert out.dtype == np.uint16 and out.max() == 4095 * 4  # 12-bit counts: 4 of them fit in 16 bits
    ones = write_mib(tmp_path / "ones.mib", np.ones((2, 2, 16, 256), np.uint8), counter_depth=1)
    out, _ = read(ones, False, bin_signal=16, bin_navigation=2)
    assert out.dtype == np.uint16 and out.max() == 1024


def test_binning_sizes_must_divide(files):
    path, _ = files["single"]  # 4 x 6 scan of 64 x 256
    with pytest.raises(ValueError, match="bin_signal.=3 does not divide the frame size 64"):
        file_reader(path, bin_signal=3)
    with pytest.raises(ValueError, match="bin_navigation.=4 does not divide the navigation size 6"):
        file_reader(path, bin_navigation=4)
    with pytest.raises(ValueError, match="bin_signal.=3 does not divide the frame size 515 .* quad_gap=3"):
        file_reader(files["quad"][0], quad_gap=3, bin_signal=3)
    with pytest.raises(ValueError, match="bin_signal"):
        file_reader(path, bin_signal=0)
    with pytest.raises(TypeError, match="bin_navigation"):
        file_reader(path, bin_navigation=True)


def test_binned_eager_load_holds_the_binned_array_and_a_few_blocks(tmp_path):
    import dataclasses

    from rsciio_mib_plugin.reader.load import Shaping, open_plan

    data = RNG.integers(0, 4096, size=(16, 16, 256, 256), dtype=np.uint16)  # 33.6 MB
    path = write_mib(tmp_path / "big.mib", data)
    del data
    tracemalloc.start()
    try:
        plan = open_plan(path, Shaping(navigation_shape=(16, 16), bin_signal=2, infer=False))
        reader = dataclasses.replace(plan.reader(), block_bytes=1 << 20)  # blocks of 1 MB
        out = reader.read_plan(plan.plans[0])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.dtype == np.uint16 and out.nbytes == 256 * 128 * 128 * 2  # 8.4 MB: 4 x 12-bit fits uint16
    assert peak < out.nbytes + 12 * (1 << 20), peak  # not the 33.6 MB full array


# --- sync offset -------------------------------------------------------------------------


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
@pytest.mark.parametrize("offset", [2, -3, 6, -6])
def test_sync_offset_shifts_frames(files, offset, lazy):
    path, data = files["single"]  # .hdr ScanX/ScanY: 6 x 4
    flat = data.reshape((-1,) + data.shape[2:])
    shifted = flat[offset:] if offset > 0 else np.concatenate([np.zeros((-offset,) + flat.shape[1:], flat.dtype), flat])
    with pytest.warns(MIBWarning) as caught:
        out, d = read(path, lazy, sync_offset=offset)
    lines = len(shifted) // 6 if offset > 0 else 4
    np.testing.assert_array_equal(out, shifted[: lines * 6].reshape(lines, 6, *flat.shape[1:]))
    text = " ".join(str(w.message) for w in caught)
    if offset > 0:  # the last line is incomplete: dropped and counted
        assert f"dropping the {len(shifted) - lines * 6} frames of the incomplete last line" in text
    else:  # the blank frames push as many frames out of the scan
        assert f"the last {-offset} frames are not loaded" in text
    assert d["original_metadata"]["mib_plugin"]["sync_offset"] == offset


def test_sync_offset_with_navigation_shape_first_frame_and_mmap(files):
    path, data = files["single"]
    flat = data.reshape((-1,) + data.shape[2:])
    # frames 2.. selected, 1 skipped: the 21 frames left fit a 7 x 3 scan exactly
    out = load_mib_data(path, return_mmap=False, navigation_shape=(7, 3), first_frame=2, sync_offset=1)
    np.testing.assert_array_equal(out, flat[3:24].reshape(3, 7, *flat.shape[1:]))
    view = load_mib_data(path, sync_offset=4)  # a positive offset is a view of the file too
    np.testing.assert_array_equal(view, flat[4:])
    with pytest.raises(ValueError, match="return_mmap=False"):
        load_mib_data(path, sync_offset=-1)
    with pytest.raises(ValueError, match="sync_offset.*skips every one"):
        load_mib_data(path, sync_offset=24)
    with pytest.raises(TypeError, match="sync_offset"):
        load_mib_data(path, sync_offset=1.0)


def test_everything_composes_in_the_documented_order(files):
    """Select and offset frames, shape them, then gap, then bin."""
    path, data = files["quad"]  # 2 x 4 scan of 512 x 512
    flat = data.reshape((-1,) + data.shape[2:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MIBWarning)
        out, d = read(path, False, first_frame=1, sync_offset=-1, navigation_shape=(4, 2), quad_gap=2, bin_signal=2)
        lazy, _ = read(path, True, first_frame=1, sync_offset=-1, navigation_shape=(4, 2), quad_gap=2, bin_signal=2)
    frames = np.concatenate([np.zeros((1,) + flat.shape[1:], flat.dtype), flat[1:8]]).reshape(2, 4, 512, 512)
    expected = binned(gapped(frames, 2), 2, 1)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(lazy, expected)
    assert d["metadata"]["General"]["mask"].shape == (257, 257)


def test_convert_bins_and_gaps(files, tmp_path):
    import subprocess
    import sys

    import hyperspy.api as hs

    path, data = files["quad"]
    done = subprocess.run(
        [sys.executable, "-m", "rsciio_mib_plugin", "convert", str(path), "-o", str(tmp_path), "--quad-gap", "3"]
        + ["--bin-navigation", "2", "--sync-offset", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    back = hs.load(tmp_path / "quad.zspy")
    np.testing.assert_array_equal(back.data, binned(gapped(data, 3), 1, 2)[..., ::-1, :])
    assert back.axes_manager.navigation_axes[0].scale == 2


# --- physics: a ring across the chip boundaries ------------------------------------------------


def test_quad_gap_gives_the_true_ring_radius_in_pyxem(tmp_path):
    """A ring of radius 150 px about the centre of the real 515-pixel detector,
    written as the detector records it (the 3-pixel cross removed)."""
    import hyperspy.api as hs

    y, x = np.mgrid[:515, :515]
    ring = (1000 * np.exp(-((np.hypot(y - 257, x - 257) - 150) ** 2) / (2 * 0.7**2))).astype(np.uint16)
    keep = np.r_[0:256, 259:515]
    recorded = ring[np.ix_(keep, keep)]
    path = write_mib(tmp_path / "ring.mib", np.stack([recorded] * 2)[:, ::-1, :], counter_depth=12)

    def profile(s):
        s.calibration.center = None  # the middle of the frame
        integral = s.get_azimuthal_integral1d(npt=400, radial_range=(140, 160), show_progressbar=False)
        values = np.asarray(integral.data[0], float)
        radii = integral.axes_manager.signal_axes[0].axis
        above = radii[values > values.max() / 2]
        return radii[np.argmax(values)], above.max() - above.min()

    plain_peak, plain_width = profile(hs.load(path))
    gap_peak, gap_width = profile(hs.load(path, quad_gap=3))  # masked by metadata.General.mask
    assert abs(gap_peak - 150) < 0.1
    assert abs(plain_peak - 150) > 1.5  # the abutted chips pull the ring in
    assert gap_width < plain_width


@pytest.mark.parametrize("b", [2, 3, 4])
@pytest.mark.parametrize("n", [1, 16, 37])
def test_bin_sum_matches_reshape_sum_in_groups(b, n):
    """Binning works BIN_GROUP frames at a time; any frame count and factor give numpy's sums."""
    from rsciio_mib_plugin.reader.transforms import bin_sum

    rng = np.random.default_rng(n * b)
    frames = rng.integers(0, 4096, (n, 12 * b, 8 * b), dtype=np.uint16)
    out = np.empty((n, 12, 8), np.uint32)
    expected = frames.reshape(n, 12, b, 8, b).sum(axis=(2, 4), dtype=np.uint32)
    np.testing.assert_array_equal(bin_sum(frames, b, out), expected)


def test_negative_sync_offset_with_chunks_that_split_frames(tmp_path):
    """Blank frames before the first (a negative sync_offset) are zeros in row-split lazy chunks too
    (they were read from offset -1: OSError EINVAL; issue 23, item 11)."""
    data = RNG.integers(1, 4096, size=(3, 4, 16, 256), dtype=np.uint16)
    path = write_mib(tmp_path / "s.mib", data)
    eager = load_mib_data(path, return_mmap=False, navigation_shape=(4, 3), sync_offset=-2)
    lazy = load_mib_data(
        path, lazy=True, return_mmap=False, navigation_shape=(4, 3), sync_offset=-2, chunks=(1, 4, 8, 256)
    )
    np.testing.assert_array_equal(lazy.compute(), eager)
    assert not eager.reshape(12, 16, 256)[:2].any()
    np.testing.assert_array_equal(eager.reshape(12, 16, 256)[2:], data.reshape(12, 16, 256)[:10])


def test_quad_gap_equal_to_the_stored_gap_zero_fills_it_too(tmp_path):
    """quad_gap=2 on a 2x2G file: the 2 stored gap rows and columns are zeros, as every other value
    of quad_gap makes them (the Merlin software may have spread counts there; issue 23, item 13)."""
    frames = RNG.integers(1, 60, size=(3, 514, 514), dtype=np.uint8)  # counts in the gap too
    path = write_mib(tmp_path / "g.mib", frames, counter_depth=6)
    for lazy in (False, True):
        out = load_mib_data(path, return_mmap=False, quad_gap=2, lazy=lazy)
        out = np.asarray(out.compute() if lazy else out)
        assert not out[:, 256:258, :].any() and not out[:, :, 256:258].any()
        np.testing.assert_array_equal(out[:, :256, :256], frames[:, :256, :256])
        np.testing.assert_array_equal(out[:, 258:, 258:], frames[:, 258:, 258:])
    np.testing.assert_array_equal(load_mib_data(path, return_mmap=False), frames)  # without quad_gap: as stored


@pytest.mark.parametrize("offset", [-5, -100_000, -(10**12), -(10**20), 10**20])
def test_sync_offset_out_of_range_is_refused_naming_it(tmp_path, offset):
    path = write_mib(tmp_path / "s.mib", RNG.integers(0, 4096, size=(5, 16, 256), dtype=np.uint16))
    with pytest.raises(ValueError, match="`sync_offset`"):
        load_mib_data(path, return_mmap=False, sync_offset=offset)
