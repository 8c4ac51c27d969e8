"""Facility conversion (issue 14): archives that hs.load, zarr and h5py read back exactly."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import write_two_counters

from rsciio_mib_plugin import convert, file_reader, write_mib
from rsciio_mib_plugin.reader.aperture import aperture, disc_mask

RNG = np.random.default_rng(14)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("archive-in")
    y, x = np.ogrid[:64, :256]
    disc = ((y - 30) ** 2 + (x - 120) ** 2 <= 10**2) * 300
    single = RNG.poisson(disc + 2, size=(4, 6, 64, 256)).astype(np.uint16)
    raw = RNG.integers(0, 2, size=(2, 3, 512, 512), dtype=np.uint8)
    return {
        "single": write_mib(folder / "single.mib", single),
        "raw": write_mib(folder / "raw.mib", raw, counter_depth=1, raw=True),
    }


def eager(path, **kwargs):
    (d,) = file_reader(path, **kwargs)
    return d["data"]


@pytest.mark.parametrize(
    "fmt, compression", [("zspy", "lz4"), ("hspy", "lz4"), ("zspy", "zstd"), ("hspy", "gzip"), ("zspy", "none")]
)
@pytest.mark.parametrize("name", ["single", "raw"])
def test_round_trip_is_exact(files, tmp_path, fmt, compression, name):
    import hyperspy.api as hs

    path = files[name]
    (report,) = convert(path, tmp_path, format=fmt, compression=compression)
    out = tmp_path / f"{name}.{fmt}"
    assert report["output"] == str(out) and out.exists()
    expected = eager(path)
    back = hs.load(out)
    np.testing.assert_array_equal(back.data, expected)
    assert back.axes_manager.navigation_shape == expected.shape[:-2][::-1]
    assert back.metadata.General.title == name and back.metadata.Signal.signal_type == "electron_diffraction"
    assert back.original_metadata.mib_plugin.flip_y is True
    lazy = hs.load(out, lazy=True)
    np.testing.assert_array_equal(lazy.inav[1, 0].data.compute(), expected[0, 1])
    # plain zarr / h5py see the array and its chunks: whole frames, about 1 MiB compressed each
    # (one pattern is read back by decompressing that), at most 16 MiB uncompressed
    stored = _plain_array(out, name)
    np.testing.assert_array_equal(stored[...], expected)
    chunk = stored.chunks
    assert chunk[-2:] == expected.shape[-2:] and np.prod(chunk) * expected.dtype.itemsize <= 16 << 20
    assert max(_chunk_sizes(out, name)) <= (1 << 20) * 1.25
    if compression != "none":
        assert report["ratio"] > 1


def _chunk_sizes(path, name) -> list[int]:
    """Stored (compressed) bytes of every chunk."""
    if path.suffix == ".zspy":
        folder = path / "Experiments" / name / "data"
        return [f.stat().st_size for f in folder.iterdir() if not f.name.startswith(".")]
    import h5py

    with h5py.File(path, "r") as f:
        dset = f[f"Experiments/{name}/data"]
        return [dset.id.get_chunk_info(i).size for i in range(dset.id.get_num_chunks())]


def _plain_array(path, name):
    if path.suffix == ".zspy":
        import zarr

        return zarr.open(str(path), mode="r")[f"Experiments/{name}/data"]
    import h5py
    import hdf5plugin  # noqa: F401  - registers the Blosc filter

    return h5py.File(path, "r")[f"Experiments/{name}/data"]


def test_summaries_equal_numpy(files, tmp_path):
    import hyperspy.api as hs

    path = files["single"]
    (report,) = convert(path, tmp_path, preview=True)
    data = eager(path).astype(np.float64)
    summaries = hs.load(tmp_path / "single.zspy").metadata.Summaries
    np.testing.assert_allclose(summaries.mean_pattern, data.mean(axis=(0, 1)), rtol=1e-6)
    np.testing.assert_array_equal(summaries.max_pattern, data.max(axis=(0, 1)))
    np.testing.assert_array_equal(summaries.frame_totals, data.sum(axis=(2, 3)))
    vbf = summaries.virtual_bright_field
    # the disc comes from the first block's mean (here: all 24 frames), centre in display rows
    disc = aperture(data.reshape(-1, 64, 256).mean(axis=0))
    assert (vbf.centre_row, vbf.centre_col, vbf.radius) == pytest.approx(disc)
    assert vbf.centre_row == pytest.approx(63 - 30, abs=0.5) and vbf.centre_col == pytest.approx(120, abs=0.5)
    np.testing.assert_array_equal(vbf.image, (data * disc_mask((64, 256), disc)).sum(axis=(2, 3)))
    assert (
        summaries.frame_start_times_ns.shape == (4, 6) and (np.diff(summaries.frame_start_times_ns.ravel()) > 0).all()
    )
    np.testing.assert_allclose(summaries.frame_exposures_ms, 1.0)
    assert (tmp_path / "single_preview.png").stat().st_size > 10_000
    assert report["disc"]["radius"] == pytest.approx(disc[2])


def pass_over(path, block_frames: int, piece_frames: int | None = None, threads: int = 1, series: bool = False):
    """The conversion's one pass over ``path`` (as hs.load shows it) in blocks and pieces of the sizes given:
    ``(data written, summaries)``."""
    from rsciio_mib_plugin.conversion.blocks import PIECE_BYTES, BlockPlan
    from rsciio_mib_plugin.conversion.one_pass import run_pass
    from rsciio_mib_plugin.reader.load import Shaping, open_plan

    read_plan = open_plan(path, Shaping(flip=True), series=series)
    reader, plan = read_plan.reader(0), read_plan.plans[0]
    nav, frame = reader.navigation_shape(plan), reader.frame_shape
    frame_bytes = int(np.prod(frame)) * reader.dtype.itemsize
    out = np.zeros(nav + frame, reader.dtype)

    def write(nav_slices, block):
        out[nav_slices] = block

    chunks = (1,) * (len(nav) - 1) + (nav[-1],) + frame
    piece_bytes = piece_frames * frame_bytes if piece_frames else PIECE_BYTES
    blocks = BlockPlan(nav, frame, reader.dtype, chunks, block_frames * frame_bytes, piece_bytes)
    return out, run_pass(reader, plan, blocks, write, threads, None)


@pytest.mark.parametrize("threads", [1, 2])
def test_summaries_over_many_blocks_and_pieces(tmp_path, threads):
    """Blocks on two workers, pieces of a few frames, counts near the 12-bit top: still exact."""
    counts = RNG.integers(4000, 4096, size=(5, 7, 16, 256), dtype=np.uint16)
    counts[2, 3] = 0  # a blank frame among them
    path = write_mib(tmp_path / "bright.mib", counts)
    written, summaries = pass_over(path, block_frames=7, piece_frames=3, threads=threads)  # a line a block: 3+3+1
    data = eager(path)
    np.testing.assert_array_equal(written, data)
    data = data.astype(np.float64)
    meta = summaries.metadata(str(path))
    np.testing.assert_allclose(meta["mean_pattern"], data.mean(axis=(0, 1)), rtol=1e-6)
    np.testing.assert_array_equal(meta["max_pattern"], data.max(axis=(0, 1)))
    np.testing.assert_array_equal(meta["frame_totals"], data.sum(axis=(2, 3)))
    vbf = meta["virtual_bright_field"]
    disc = (vbf["centre_row"], vbf["centre_col"], vbf["radius"])
    np.testing.assert_array_equal(vbf["image"], (data * disc_mask((16, 256), disc)).sum(axis=(2, 3)))
    assert meta["frame_totals"][2, 3] == 0


@pytest.mark.parametrize("how, threads", [("SIGINT", "1"), ("SIGTERM", "2")])
def test_an_interrupted_conversion_leaves_nothing(tmp_path, how, threads):
    """Ctrl-C or a SIGTERM half way through: no archive, no temporary folder, the input untouched."""
    import signal
    import subprocess
    import sys
    import time

    data = RNG.integers(0, 4096, size=(48, 64, 256, 256), dtype=np.uint16)  # 400 MB: seconds to convert
    path = write_mib(tmp_path / "big.mib", data)
    del data
    before = path.stat()
    out = tmp_path / "out"
    command = [sys.executable, "-m", "rsciio_mib_plugin", "convert", str(path), "-o", str(out), "--threads", threads]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out.is_dir() and any(out.iterdir())) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert process.poll() is None, "the conversion ended before it could be interrupted"
        time.sleep(0.2)  # some chunks written
        process.send_signal(getattr(signal, how))
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode != 0 and "interrupted" in err
    assert os.listdir(out) == []  # no archive, no temporary left
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_overwrite_is_refused_before_any_work(files, tmp_path):
    path = files["single"]
    convert(path, tmp_path)
    stamp = (tmp_path / "single.zspy").stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="overwrite"):
        convert([files["raw"], path], tmp_path)
    assert not (tmp_path / "raw.zspy").exists()  # checked before anything was written
    assert (tmp_path / "single.zspy").stat().st_mtime_ns == stamp
    convert(path, tmp_path, overwrite=True, compression="zstd")
    assert sorted(os.listdir(tmp_path)) == ["single.zspy"]


def test_bad_arguments(files, tmp_path):
    path = files["single"]
    for kwargs, message in (
        ({"format": "tiff"}, "format"),
        ({"compression": "brotli"}, "compression"),
        ({"level": 12}, "level"),
        ({"chunks": (1, 2, 3)}, "chunks"),
        ({"chunks": (1, 1, 1, 1)}, "chunks"),  # a file per pixel
        ({"chunks": (1, 1, 64, 2.5)}, "chunks"),
        ({"chunks": "a"}, "chunks"),
        ({"chunks": 4}, "chunks"),
        ({"shuffle": "no"}, "shuffle"),
        ({"overwrite": "no"}, "overwrite"),
        ({"preview": "no"}, "preview"),
        ({"threads": 0}, "threads"),
        ({"nonsense": 1}, "nonsense"),
    ):
        with pytest.raises((ValueError, TypeError), match=message):
            convert(path, tmp_path, **kwargs)
    with pytest.raises(FileNotFoundError, match="no such file"):
        convert(tmp_path / "missing.mib", tmp_path)
    assert not list(tmp_path.glob("*.zspy"))
    assert os.listdir(tmp_path) == []  # nothing written
    (report,) = convert(path, tmp_path, chunks=(1, 1, 64, 256), preview=False)  # one frame a chunk is fine
    assert tuple(report["chunks"]) == (1, 1, 64, 256)
    (tmp_path / "single_preview.png").write_bytes(b"mine")
    with pytest.raises(TypeError, match="preview"):
        convert(path, tmp_path, overwrite=True, preview="no")
    assert (tmp_path / "single_preview.png").read_bytes() == b"mine"


def test_counters_make_one_archive_each(tmp_path):
    path = write_two_counters(tmp_path / "both.mib", seed=14)
    reports = convert(path, tmp_path / "out")
    assert [os.path.basename(r["output"]) for r in reports] == ["both_counter0.zspy", "both_counter1.zspy"]


def test_an_unreadable_exposure_is_a_gap_in_the_summaries_not_a_failure(tmp_path):
    import hyperspy.api as hs

    from rsciio_mib_plugin import MIBWarning

    data = RNG.integers(0, 100, size=(2, 5, 16, 256), dtype=np.uint16)
    path = write_mib(tmp_path / "scan.mib", data)
    raw = bytearray(path.read_bytes())
    at = 6 * (384 + 16 * 256 * 2)  # frame 6's header
    head = bytes(raw[at : at + 384])
    raw[at : at + 384] = head.replace(b",1000000ns,", b",10x0000ns,")
    path.write_bytes(bytes(raw))
    _, summaries = pass_over(path, block_frames=5)  # a scan line a block: the bad header in the second
    with pytest.warns(MIBWarning, match=r"scan\.mib: the time or exposure of 1 frame\(s\) \(6\) cannot be read"):
        meta = summaries.metadata(str(path))
    for summary in (meta, None):
        if summary is None:  # the same through convert, in its own blocks
            with pytest.warns(MIBWarning, match=r"the time or exposure of 1 frame\(s\) \(6\) cannot be read"):
                convert(path, tmp_path / "out")
            summary = hs.load(tmp_path / "out" / "scan.zspy").metadata.Summaries.as_dictionary()
        exposures, times = summary["frame_exposures_ms"].ravel(), summary["frame_start_times_ns"].ravel()
        assert np.isnan(exposures[6]) and times[6] == -1
        assert np.delete(exposures, 6).tolist() == [1.0] * 9 and (np.delete(times, 6) > 0).all()
    np.testing.assert_array_equal(hs.load(tmp_path / "out" / "scan.zspy").data, data[..., ::-1, :])


def test_a_frame_time_in_another_format_leaves_the_others(tmp_path):
    """One header whose time does not parse (no error: the headers say it their way) costs that frame only."""
    import hyperspy.api as hs

    data = RNG.integers(0, 100, size=(2, 4, 16, 256), dtype=np.uint16)
    path = write_mib(tmp_path / "scan.mib", data)
    raw = bytearray(path.read_bytes())
    at = 5 * (384 + 16 * 256 * 2)  # frame 5's header: its MQ1A time in US style, same length
    head = bytes(raw[at : at + 384])
    fields = head.split(b",")
    i = fields.index(b"MQ1A") + 1
    fields[i] = b"6/14/2024 11:31:21 AM".ljust(len(fields[i]))
    raw[at : at + 384] = b",".join(fields)
    path.write_bytes(bytes(raw))
    convert(path, tmp_path / "out")
    times = hs.load(tmp_path / "out" / "scan.zspy").metadata.Summaries.frame_start_times_ns.ravel()
    assert times[5] == -1 and (np.delete(times, 5) > 0).all()


def test_a_series_of_files_is_one_archive_with_every_frame_time(tmp_path):
    import hyperspy.api as hs

    data = RNG.integers(0, 100, size=(3, 4, 16, 256), dtype=np.uint16)
    flat = data.reshape(-1, 16, 256)
    start = 0
    times = np.datetime64("2026-11-24T12:00", "ns").astype(np.int64) + np.arange(12) * 1_000_000
    for i, size in enumerate([5, 4, 3]):  # scan1.mib, scan2.mib, scan3.mib, frames numbered on
        part = slice(start, start + size)
        write_mib(tmp_path / f"scan{i + 1}.mib", flat[part], first_number=start + 1, timestamps=times[part], hdr=False)
        start += size
    write_mib(tmp_path / "tmp.mib", data)  # the acquisition's .hdr beside the first file
    (tmp_path / "tmp.hdr").rename(tmp_path / "scan1.hdr")
    (tmp_path / "tmp.mib").unlink()
    written, summaries = pass_over(tmp_path / "scan2.mib", block_frames=8, series=True)  # 2 lines a block: across files
    np.testing.assert_array_equal(written, data[..., ::-1, :])
    np.testing.assert_array_equal(summaries.times, times.reshape(3, 4))
    convert(tmp_path / "scan2.mib", tmp_path / "out", series=True)
    back = hs.load(tmp_path / "out" / "scan2.zspy")
    np.testing.assert_array_equal(back.data, data[..., ::-1, :])
    np.testing.assert_array_equal(back.metadata.Summaries.frame_start_times_ns, times.reshape(3, 4))


def test_each_archive_is_reported_as_soon_as_it_is_in_place(files, tmp_path):
    seen = []

    def done(report):
        seen.append((report["archive"], report["archives"], sorted(p.name for p in tmp_path.iterdir())))

    reports = convert([files["single"], files["raw"]], tmp_path, done=done)  # threads: the usable cores
    assert seen == [(1, 2, ["single.zspy"]), (2, 2, ["raw.zspy", "single.zspy"])]
    assert [r["archive"] for r in reports] == [1, 2]


def test_cli_many_inputs_one_line_each(files, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rsciio_mib_plugin",
            "convert",
            str(files["single"]),
            str(files["raw"]),
            "-o",
            str(tmp_path),
        ]
        + ["--format", "hspy", "--compression", "zstd", "--level", "5", "--threads", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("[1/2]") and "ratio" in lines[1]
    assert done.stderr == ""
    done = subprocess.run(
        [sys.executable, "-m", "rsciio_mib_plugin", "convert", str(files["single"]), "-o", str(tmp_path / "p")]
        + ["--progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and "convert" in done.stderr and "100%" in done.stderr


def test_single_frames_and_captures(samples, tmp_path):
    import hyperspy.api as hs

    one = samples / "Single_1_Frame_CounterDepth_12_Rows_256.mib"
    (report,) = convert(one, tmp_path, preview=True)
    back = hs.load(report["output"])
    np.testing.assert_array_equal(back.data, eager(one))
    assert back.metadata.Summaries.frame_totals.tolist() == [int(eager(one).sum())]
    frames = RNG.integers(0, 64, size=(2, 3, 16, 256), dtype=np.uint8)
    capture = write_mib(tmp_path / "capture.mib", frames, mpx=True)
    (report,) = convert(capture, tmp_path / "out", format="hspy")
    back = hs.load(report["output"])
    np.testing.assert_array_equal(back.data, eager(capture))
    assert (np.diff(back.metadata.Summaries.frame_start_times_ns.ravel()) == 1_000_000).all()


@pytest.mark.parametrize("fmt", ["zspy", "hspy"])
def test_chunks_are_sized_by_the_compression_ratio(tmp_path, fmt):
    """About 1 MiB compressed per chunk: many frames of sparse counts, few of noise (fewer files)."""
    rng = np.random.default_rng(14)
    sparse = (rng.random((4, 64, 256, 256)) < 0.002).astype(np.uint16) * 7
    noise = rng.integers(0, 4096, (4, 64, 256, 256), dtype=np.uint16)
    frames_per_chunk = {}
    for name, data in (("sparse", sparse), ("noise", noise)):
        path = write_mib(tmp_path / f"{name}.mib", data, hdr={"ScanX": 64, "ScanY": 4})
        (report,) = convert(path, tmp_path / fmt, format=fmt)
        frames_per_chunk[name] = report["chunks"][1]
        assert max(_chunk_sizes(tmp_path / fmt / f"{name}.{fmt}", name)) <= (1 << 20) * 1.25
        np.testing.assert_array_equal(_plain_array(tmp_path / fmt / f"{name}.{fmt}", name)[...], data[..., ::-1, :])
    assert frames_per_chunk["sparse"] == 64  # the whole line: far under 1 MiB compressed
    assert 8 <= frames_per_chunk["noise"] <= 12  # 12-bit noise in 16-bit words compresses about 1.3x


@pytest.mark.parametrize("dtype, top", [(np.uint8, 63), (np.uint8, 255), (np.uint16, 4095), (np.uint16, 65535)])
@pytest.mark.parametrize("shape", [(37, 1000), (128, 65536), (1, 5)])
def test_grouped_sums_never_overflow(dtype, top, shape):
    """Partial sums in the frames' own type stay under its maximum, whatever the counts."""
    from rsciio_mib_plugin.conversion.summaries import _grouped_sum

    rng = np.random.default_rng(top)
    a = rng.integers(top - 1, top + 1, shape, endpoint=False).astype(dtype)  # near the maximum: the hard case
    group = np.iinfo(dtype).max // int(a.max())
    for axis in (0, 1):
        np.testing.assert_array_equal(_grouped_sum(a, axis, group, np.uint64), a.sum(axis=axis, dtype=np.uint64))


def test_two_inputs_of_one_name_are_refused_before_any_work(make_mib, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, _ = make_mib(name="a/scan.mib")
    b, _ = make_mib(name="b/scan.mib", seed=1)
    with pytest.raises(ValueError, match=r"a/scan.mib and .*b/scan.mib would both be written to .*scan.zspy"):
        convert([a, b], tmp_path / "out", overwrite=True)
    assert not (tmp_path / "out").exists()


FULL_DISK = """
import resource, signal, sys
import numpy as np
from rsciio_mib_plugin import write_mib
from rsciio_mib_plugin.cli import main
write_mib("scan.mib", np.random.default_rng(0).integers(0, 4096, (8, 8, 256, 256), dtype=np.uint16), hdr={"ScanX": 8})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))
sys.exit(main(["convert", "scan.mib", "-o", "out", "--format", "hspy", "--compression", sys.argv[1]]))
"""


@pytest.mark.parametrize("compression", ["lz4", "gzip"])
def test_hspy_on_a_full_disk_fails_in_one_line_and_keeps_nothing(tmp_path, compression):
    """HDF5 crashed the process (exit -11 after an 11-line error) when its file could not be written."""
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, compression], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "scan.hspy" in lines[0] and "File too large" in lines[0], done.stderr
    assert os.listdir(tmp_path / "out") == []
