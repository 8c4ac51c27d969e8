"""Navigators computed while reading and stored in archives (issue 26): s.navigator is set, equals
what numpy computes from the data, and a lazy archive plots reading only the pattern shown."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from helpers import with_flyback, write_series, write_two_counters
from hypothesis import given, settings
from hypothesis import strategies as st

from rsciio_mib_plugin import MIBWarning, convert, file_reader, load, write_mib
from rsciio_mib_plugin.format.totals import count_while_converting, frame_totals
from rsciio_mib_plugin.reader.aperture import aperture_of, disc_mask, sample_positions

RNG = np.random.default_rng(26)


def _scan(rows=6, cols=8, frame=(64, 256)):
    """Frames with a direct-beam disc, so the bright field differs from the totals."""
    y, x = np.ogrid[: frame[0], : frame[1]]
    disc = ((y - frame[0] / 2) ** 2 + (x - frame[1] / 2) ** 2 < 12**2) * 40
    return RNG.poisson(disc + 1, size=(rows, cols, *frame)).astype(np.uint16)


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    folder = tmp_path_factory.mktemp("navigators")
    return write_mib(folder / "scan.mib", _scan(), hdr={"ScanX": 8, "ScanY": 6})


def _navigator(d: dict):
    return d["metadata"].get("_HyperSpy", {}).get("_sig_navigator")


def _bright_field(data: np.ndarray) -> np.ndarray:
    """The bright field with numpy: the aperture of the sampled frames, the masked sum."""
    frame = data.shape[-2:]
    flat = data.reshape((-1,) + frame)
    disc = aperture_of(flat[sample_positions(flat.shape[0], flat[0].nbytes)])
    return (data * disc_mask(frame, disc)).sum(axis=(-2, -1), dtype=np.uint64)


@pytest.fixture(params=["numba running", "numpy only"])
def counting(request, monkeypatch):
    """Both ways of counting while reading: the compiled pass (numba already running in
    the process) and numpy's count after the conversion."""
    if request.param == "numba running":
        import numba  # noqa: F401
    else:
        monkeypatch.delitem(sys.modules, "numba", raising=False)
    return request.param


@pytest.mark.parametrize(
    "options",
    [{}, {"bin_navigation": 2}, {"bin_signal": 2}, {"navigation_shape": (48,)}, {"first_frame": 3, "last_frame": 40}],
)
def test_eager_loads_carry_the_totals(scan, options, counting):
    (d,) = file_reader(scan, **options)
    nav = _navigator(d)
    data = np.asarray(d["data"])
    np.testing.assert_array_equal(nav["data"], data.sum(axis=(-2, -1), dtype=np.uint64))
    assert [a["size"] for a in nav["axes"]] == list(data.shape[:-2])
    assert not any(a["navigate"] for a in nav["axes"])  # an image (or a line) of the scan


def test_hyperspy_signals_have_it_as_s_navigator(scan):
    import hyperspy.api as hs

    s = hs.load(scan)
    assert s.navigator is not None and s.navigator.metadata.General.title == "scan: total"
    np.testing.assert_array_equal(s.navigator.data, s.data.sum(axis=(-2, -1)))
    assert hs.load(scan, navigator=None).navigator is None  # nothing attached
    assert hs.load(scan, lazy=True).navigator is None  # lazy: no extra pass unless asked
    lazy = hs.load(scan, lazy=True, navigator="total")
    np.testing.assert_array_equal(lazy.navigator.data, s.navigator.data)


def test_bright_field_eager_and_lazy(scan):
    (eager,) = file_reader(scan, navigator="bright_field")
    (lazy,) = file_reader(scan, navigator="bright_field", lazy=True)
    expected = _bright_field(eager["data"])
    np.testing.assert_array_equal(_navigator(eager)["data"], expected)
    np.testing.assert_array_equal(_navigator(lazy)["data"], expected)
    assert not np.array_equal(expected, eager["data"].sum(axis=(-2, -1)))  # not the totals


def test_an_array_is_attached_and_checked(scan):
    image = RNG.random((6, 8))
    (d,) = file_reader(scan, navigator=image)
    np.testing.assert_array_equal(_navigator(d)["data"], image)
    with pytest.raises(ValueError, match=r"`navigator` of shape \(8, 6\) does not fit the navigation shape \(6, 8\)"):
        file_reader(scan, navigator=image.T)
    with pytest.raises(ValueError, match="`navigator` must be 'total', 'bright_field', None or an array"):
        file_reader(scan, navigator="sum")
    with pytest.raises(ValueError, match="`navigator` must hold numbers"):
        file_reader(scan, navigator=np.full((6, 8), "x"))


def test_counters_lost_frames_and_urls(tmp_path):
    both = write_two_counters(tmp_path / "both.mib", seed=26)
    for d in file_reader(both):  # one navigator per counter's signal
        np.testing.assert_array_equal(_navigator(d)["data"], d["data"].sum(axis=(-2, -1), dtype=np.uint64))
    data = _scan(3, 4).reshape(12, 64, 256)
    hdr = {"ScanX": 4, "ScanY": 3, "Frames in Acquisition": 12}
    first = write_mib(tmp_path / "lost.mib", data[:5], hdr=hdr)
    later = write_mib(tmp_path / "later.mib", data[7:], hdr=False, first_number=8)  # numbers 6 and 7 lost
    path = tmp_path / "lost.mib"
    path.write_bytes(first.read_bytes() + later.read_bytes())
    with pytest.warns(MIBWarning, match="lost"):
        (d,) = file_reader(path)
    totals = _navigator(d)["data"]
    np.testing.assert_array_equal(totals, d["data"].sum(axis=(-2, -1), dtype=np.uint64))
    assert (totals.ravel()[[5, 6]] == 0).all()
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/navigators/scan.mib", both.read_bytes())
    fs.pipe("/navigators/scan.hdr", both.with_suffix(".hdr").read_bytes())
    try:
        signals = load("memory://navigators/scan.mib")
    finally:
        fs.rm("/navigators", recursive=True)
    for s, d in zip(signals, file_reader(both)):
        np.testing.assert_array_equal(s.navigator.data, _navigator(d)["data"])


def test_flyback_frames_and_series(tmp_path):
    """Flyback frames (dropped from the scan) are not in the navigator; a series is one scan."""
    data = _scan(3, 4)
    lines, exposures = with_flyback(data, 1, "end", value=500)
    hdr = {"ScanX": 4, "ScanY": 3, "Frames in Acquisition": 15, "Frames per Trigger": 5}
    path = write_mib(tmp_path / "fly.mib", lines.reshape((-1,) + data.shape[2:]), exposure=exposures.ravel(), hdr=hdr)
    for lazy, navigator in ((False, "total"), (True, "total"), (True, "bright_field")):
        with pytest.warns(MIBWarning, match="flyback"):
            (d,) = file_reader(path, flip_y=False, lazy=lazy, navigator=navigator)
        expected = data.sum(axis=(-2, -1), dtype=np.uint64) if navigator == "total" else _bright_field(data)
        np.testing.assert_array_equal(_navigator(d)["data"], expected)
    series = tmp_path / "series"
    series.mkdir()
    paths = write_series(series, data, [5, 4, 3])
    for lazy in (False, True):
        (d,) = file_reader(paths[0], series=True, navigation_shape=(4, 3), lazy=lazy, navigator="total")
        np.testing.assert_array_equal(_navigator(d)["data"], data.sum(axis=(-2, -1), dtype=np.uint64))


def test_archives_store_it_and_a_lazy_plot_reads_only_the_pattern_shown(scan, tmp_path, monkeypatch):
    import hyperspy.api as hs
    import matplotlib
    import zarr

    matplotlib.use("Agg")
    (eager,) = file_reader(scan)
    convert(scan, tmp_path / "total")
    convert(scan, tmp_path / "bf", navigator="bright_field", format="hspy")
    convert(scan, tmp_path / "none", navigator=None)
    s = hs.load(tmp_path / "total" / "scan.zspy", lazy=True)
    np.testing.assert_array_equal(s.navigator.data, _navigator(eager)["data"])
    bf = hs.load(tmp_path / "bf" / "scan.hspy", lazy=True)
    np.testing.assert_array_equal(bf.navigator.data, _bright_field(np.asarray(eager["data"])))
    assert hs.load(tmp_path / "none" / "scan.zspy", lazy=True).navigator is None

    reads = []
    original = zarr.storage.DirectoryStore.__getitem__

    def counting(self, key):
        if re.fullmatch(r"Experiments/scan/data/\d+\.\d+\.\d+\.\d+", key):
            reads.append(key)
        return original(self, key)

    monkeypatch.setattr(zarr.storage.DirectoryStore, "__getitem__", counting)
    s = hs.load(tmp_path / "total" / "scan.zspy", lazy=True)
    assert s.data.npartitions > 1
    s.plot()
    assert reads == ["Experiments/scan/data/0.0.0.0"]  # the pattern shown, nothing else
    reads.clear()
    s.navigator = None
    s.plot()  # HyperSpy computing its own navigator reads every chunk
    assert len(set(reads)) == s.data.npartitions


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([(np.uint8, 1), (np.uint8, 6), (np.uint16, 12), (np.uint32, 24), (np.uint16, None)]),
    st.sampled_from([(1, 256), (16, 256), (64, 256), (256, 256), (512, 512), (514, 514), (3, 7)]),
    st.integers(1, 5),
    st.integers(0, 2**32 - 1),
)
def test_frame_totals_equal_numpy(kind, frame, n, seed):
    dtype, depth = kind
    top = 2**depth if depth else np.iinfo(dtype).max + 1
    frames = np.random.default_rng(seed).integers(0, top, (n, *frame), dtype=dtype)
    frames[0] = top - 1  # every pixel at the counter's maximum
    np.testing.assert_array_equal(frame_totals(frames, depth), frames.reshape(n, -1).sum(axis=1, dtype=np.uint64))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["u1", ">u2", ">u4"]),
    st.sampled_from([(1, 1), (1, 256), (64, 256), (256, 256), (3, 7), (515, 514)]),
    st.integers(1, 4),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_the_compiled_pass_converts_and_counts_like_numpy(stored, frame, n, flip, seed):
    import numba  # noqa: F401  (the pass is taken only where numba runs already)

    dtype = np.dtype(stored)
    pixels = np.random.default_rng(seed).integers(0, np.iinfo(dtype).max, (n, *frame), endpoint=True).astype(dtype)
    pixels[0] = np.iinfo(dtype).max
    out = np.empty(pixels.shape, dtype.newbyteorder("="))
    totals = np.empty(n, np.uint64)
    assert count_while_converting(pixels, out[:, ::-1] if flip else out, totals)
    np.testing.assert_array_equal(out[:, ::-1] if flip else out, pixels)
    np.testing.assert_array_equal(totals, pixels.reshape(n, -1).sum(axis=1, dtype=np.uint64))


def test_the_compiled_pass_declines_what_it_does_not_handle(monkeypatch):
    import numba  # noqa: F401

    pixels = np.arange(2 * 4 * 6, dtype=">u2").reshape(2, 4, 6)
    totals = np.empty(2, np.uint64)
    for stored, out in [
        (pixels[:, :, ::2], np.empty((2, 4, 3), np.uint16)),  # not contiguous
        (pixels, np.empty((2, 4, 6), np.uint32)),  # another type
        (pixels, np.empty((2, 4, 12), np.uint16)[:, :, ::2]),  # into a strided view
        (pixels.astype("<u2"), np.empty((2, 4, 6), np.uint16)),  # already native
    ]:
        assert not count_while_converting(stored, out, totals)
    monkeypatch.delitem(sys.modules, "numba")
    assert not count_while_converting(pixels, np.empty((2, 4, 6), np.uint16), totals)


def test_an_eager_load_does_not_start_numba(scan):
    """Starting numba costs about 0.5 s, more than the count it would save on most loads."""
    code = f"import sys; from rsciio_mib_plugin import file_reader; file_reader({str(scan)!r}); print('numba' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


def test_reference_files_carry_it_when_written_with_one(scan, tmp_path):
    import json

    from rsciio_mib_plugin import MIBFormatError, write_references

    (eager,) = file_reader(scan)
    write_references(scan, tmp_path / "plain.json")
    assert _navigator(file_reader(str(tmp_path / "plain.json"))[0]) is None
    write_references(scan, tmp_path / "nav.json", navigator="total")
    (d,) = file_reader(str(tmp_path / "nav.json"), lazy=True)
    np.testing.assert_array_equal(_navigator(d)["data"], _navigator(eager)["data"])
    refs = json.loads((tmp_path / "nav.json").read_text())
    attrs = json.loads(refs["refs"]["data/.zattrs"])
    attrs["navigator"]["data"] = [[1, 2], [3]]
    refs["refs"]["data/.zattrs"] = json.dumps(attrs)
    (tmp_path / "bad.json").write_text(json.dumps(refs))
    with pytest.raises(MIBFormatError, match="'navigator' must hold 'kind' and numbers of the scan's shape"):
        file_reader(str(tmp_path / "bad.json"))
