"""The command line, HyperSpy save to .mib, and captures of the TCP data port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import hyperspy.api as hs
import numpy as np
import pytest

from rsciio_mib_plugin import MIBWarning, file_reader, load_mib_data, write_mib
from rsciio_mib_plugin.format.mpx import mpx_message


def cli(*args, cwd=None):
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, "-m", "rsciio_mib_plugin", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


@pytest.fixture
def scan(make_mib):
    return make_mib(scan=(3, 5), frame=(64, 256), seed=2)


# --- command line -------------------------------------------------------------------


def test_help_and_usage_errors():
    for command in ([], ["demo"], ["info"], ["view"], ["convert"]):
        done = cli(*command, "--help")
        assert done.returncode == 0 and "usage: rsciio-mib" in done.stdout
    done = cli()
    assert done.returncode == 2
    done = cli("info")
    assert done.returncode == 2 and "required" in done.stderr
    done = cli("nonsense")
    assert done.returncode == 2


def test_info_json_on_real_samples(samples):
    names = ["001_4x2_6bit.mib", "Quad_9_Frame_CounterDepth_1_Rows_256RAW.mib", "002_4x2_6bit_roi128.mib"]
    done = cli("info", "--json", *[samples / n for n in names])
    assert done.returncode == 0, done.stderr
    first, raw, roi = json.loads(done.stdout)
    assert first["layout"] == "1x1" and first["pixel_type"] == "U08" and first["counter_depth"] == 6
    assert first["frames"] == 8 and first["datasets"][0]["navigation_shape"] == [4, 2]
    assert first["datasets"][0]["rule"] == "frame timestamps (line gaps)"
    assert first["exposure_ms"] == 100.0 and first["hdr"].endswith("001_4x2_6bit.hdr")
    assert first["first_timestamp"] == "2021-05-07T16:51:10.905800928Z"
    assert raw["raw"] is True and raw["frame_shape"] == [512, 512] and raw["datasets"][0]["navigation_shape"] == [9]
    assert roi["frame_shape"] == [128, 256]


def test_info_text_and_errors(scan, tmp_path):
    path, _ = scan
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 100)
    done = cli("info", path)
    assert done.returncode == 0
    assert "(5, 3|" not in done.stdout  # the last frame is cut, so a line is incomplete
    assert "incomplete" in done.stdout and "dropped" in done.stdout
    bad = tmp_path / "bad.mib"
    bad.write_bytes(b"not a mib file at all, not at all" * 4)
    done = cli("info", bad)
    assert done.returncode == 1 and "not a Merlin frame header" in done.stderr and done.stdout == ""
    done = cli("view", bad)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    done = cli("--debug", "view", bad)
    assert "Traceback" in done.stderr


def test_view_writes_a_png(samples, tmp_path):
    import matplotlib.image

    out = tmp_path / "preview.png"
    done = cli("view", samples / "001_4x2_6bit.mib", "-o", out)
    assert done.returncode == 0, done.stderr
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (540, 1100)


def test_convert_streams_and_refuses_to_overwrite(scan, tmp_path):
    path, data = scan
    out_dir = tmp_path / "out"
    for fmt in ("zspy", "hspy"):
        done = cli("convert", path, "-o", out_dir, "--format", fmt)
        assert done.returncode == 0, done.stderr
        back = hs.load(out_dir / f"scan.{fmt}")
        np.testing.assert_array_equal(back.data, data[..., ::-1, :])
        assert back.metadata.Signal.signal_type == "electron_diffraction"
        assert back.original_metadata.get_item("hdr_file.ScanX") == "5"
    before = (out_dir / "scan.hspy").stat().st_mtime_ns
    done = cli("convert", path, "-o", out_dir, "--format", "hspy")
    assert done.returncode == 1 and "--overwrite" in done.stderr
    assert (out_dir / "scan.hspy").stat().st_mtime_ns == before
    done = cli("convert", path, "-o", out_dir, "--format", "hspy", "--overwrite", "--chunks", "1,5,64,256")
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(hs.load(out_dir / "scan.hspy").data, data[..., ::-1, :])


def test_demo(tmp_path):
    done = cli("demo", cwd=tmp_path)  # a folder of its own under the current directory
    assert done.returncode == 0, done.stderr
    assert "ElectronDiffraction2D" in done.stdout
    assert "io_plugin: rsciio_mib_plugin" in done.stdout
    assert "scan shape rule: frame timestamps (line gaps)" in done.stdout  # pixel trigger: no shape in the .hdr
    assert "direct beam (pyxem centre of mass)" in done.stdout and "time_zone = UTC" in done.stdout
    assert done.stderr == ""
    folder = tmp_path / "rsciio-mib-demo"
    assert (folder / "demo_preview.png").stat().st_size > 10_000
    s = hs.load(folder / "demo_scan.mib")
    assert s.axes_manager.navigation_shape == (32, 24)
    assert "ScanX" not in s.original_metadata.hdr_file.as_dictionary()
    # the direct beam moves and Bragg discs appear in a grain: a realistic scan, not noise
    centre = s.data[..., 110:150, 110:150].sum(axis=(-2, -1))
    assert centre.max() > 1.3 * centre.min()


ERRORS = [
    ("missing", lambda tmp: tmp / "nope.mib", "no such file: '{path}'"),
    ("directory", lambda tmp: tmp, "'{path}' is a directory, not a .mib file"),
    ("not a MIB file", lambda tmp: _write(tmp / "text.mib", b"hello, world" * 10), "not a Merlin frame header"),
]


def _write(path, content):
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("case", ERRORS, ids=[c[0] for c in ERRORS])
@pytest.mark.parametrize("command", ["info", "view", "convert"])
def test_cli_errors_are_one_line_on_stderr_with_the_same_words(tmp_path, case, command):
    _, make, wording = case
    path = make(tmp_path)
    extra = ["-o", tmp_path / "out"] if command == "convert" else []
    done = cli(command, path, *extra)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == f"rsciio-mib {command}: error: " + done.stderr.split(": error: ", 1)[1]
    assert done.stderr.count("\n") == 1 and wording.format(path=path) in done.stderr
    assert not (tmp_path / "out").exists()


def test_cli_version_progress_and_fifo(tmp_path, scan):
    from rsciio_mib_plugin import __version__

    done = cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"rsciio-mib {__version__}"
    path, _ = scan
    # not a terminal: no progress bar unless asked for
    done = cli("convert", path, "-o", tmp_path / "a")
    assert done.returncode == 0 and "Completed" not in done.stderr and done.stdout.count("\n") == 1
    done = cli("convert", path, "-o", tmp_path / "b", "--progress")
    assert done.returncode == 0 and "100%" in done.stderr
    fifo = tmp_path / "fifo.mib"
    os.mkfifo(fifo)
    done = cli("info", fifo)  # must not block on opening the FIFO
    assert done.returncode == 1 and "not a regular file" in done.stderr


def test_cli_escapes_control_characters_from_files(tmp_path):
    data = np.zeros((2, 16, 256), np.uint8)
    path = write_mib(tmp_path / "esc.mib", data, hdr=False)
    raw = path.read_bytes().replace(b"   1x1,", b"\x1b]0;X\x07,", 2)
    path.write_bytes(raw)
    done = cli("info", path)
    assert "\x1b" not in done.stdout + done.stderr and "\x07" not in done.stdout + done.stderr
    assert "\\x1b]0;X\\x07" in done.stdout


@pytest.mark.parametrize(
    "rule, words",
    [
        ("frame timestamps (line gaps)", "(4, 2|256, 128), a scan from frame timestamps (line gaps)"),
        (
            "stack (no line structure in the frame timestamps)",
            "(9|256, 128), a stack of 9 frames (no line structure in the frame timestamps)",
        ),
        ("stack (no .hdr)", "(9|256, 128), a stack of 9 frames (no .hdr)"),
        ("hdr ScanX/ScanY", "(4, 2|256, 128), a scan from hdr ScanX/ScanY"),
    ],
)
def test_info_wording_for_each_rule(rule, words):
    """HyperSpy's shape (x first, then columns, rows) and its metadata's words ("stack", never "single frame")."""
    from rsciio_mib_plugin.cli.report import scan_summary

    shape = [9] if rule.startswith("stack") else [4, 2]
    assert scan_summary({"navigation_shape": shape, "rule": rule}, [128, 256]) == words
    one = scan_summary({"navigation_shape": [], "rule": "stack (no .hdr)"}, [128, 256])
    assert one == "(|256, 128), a stack of 1 frame (no .hdr)"


# --- HyperSpy save ---------------------------------------------------------------------


def test_hyperspy_save_mib_round_trip(scan, tmp_path):
    import rsciio_mib_plugin

    path, data = scan
    rsciio_mib_plugin.register()  # what the startup hook does; idempotent
    s = hs.load(path, file_format=rsciio_mib_plugin)
    s.save(tmp_path / "copy.mib")
    assert (tmp_path / "copy.hdr").exists()
    back = hs.load(tmp_path / "copy.mib", file_format=rsciio_mib_plugin)
    np.testing.assert_array_equal(back.data, s.data)
    assert back.axes_manager.navigation_shape == (5, 3)
    np.testing.assert_array_equal(
        load_mib_data(tmp_path / "copy.mib", return_mmap=False, navigation_shape=(5, 3)), data
    )
    lazy = hs.load(path, file_format=rsciio_mib_plugin, lazy=True)
    lazy.save(tmp_path / "lazy.mib")
    np.testing.assert_array_equal(hs.load(tmp_path / "lazy.mib", file_format=rsciio_mib_plugin).data, s.data)


def test_hyperspy_save_refuses_what_mib_cannot_hold(tmp_path):
    import rsciio_mib_plugin

    rsciio_mib_plugin.register()
    with pytest.raises(ValueError, match="unsigned integers"):
        hs.signals.Signal2D(np.zeros((2, 256, 256), np.float32)).save(tmp_path / "f.mib")
    with pytest.raises(ValueError, match="256, 512 or 514"):
        hs.signals.Signal2D(np.zeros((2, 100, 300), np.uint16)).save(tmp_path / "g.mib")
    with pytest.raises(ValueError, match="24-bit"):
        hs.signals.Signal2D(np.full((1, 64, 256), 1 << 25, np.uint32)).save(tmp_path / "h.mib")
    assert not any((tmp_path / n).exists() for n in ("f.mib", "g.mib", "h.mib"))


# --- MPX captures ---------------------------------------------------------------------------


def capture_of(mib: Path, out: Path, with_hdr=True) -> Path:
    """The data-port capture of a .mib (+ .hdr): one HDR message, one message per frame."""
    from rsciio_mib_plugin import MIBProperties

    raw = mib.read_bytes()
    frame_bytes = MIBProperties.from_path(mib).geometry.frame_bytes
    parts = []
    if with_hdr and mib.with_suffix(".hdr").exists():
        parts.append(mpx_message(mib.with_suffix(".hdr").read_bytes().rstrip(b" ")))
    for i in range(len(raw) // frame_bytes):
        parts.append(mpx_message(raw[i * frame_bytes : (i + 1) * frame_bytes]))
    out.write_bytes(b"".join(parts))
    return out


def test_captures_of_every_sample_read_like_the_mib(samples, tmp_path):
    files = sorted(samples.glob("*.mib"))
    assert len(files) >= 20
    for mib in files:
        capture = capture_of(mib, tmp_path / f"{mib.stem}.mpx")
        expected = load_mib_data(mib, return_mmap=False)
        np.testing.assert_array_equal(load_mib_data(capture, return_mmap=False), expected, err_msg=mib.name)
        np.testing.assert_array_equal(
            load_mib_data(capture.read_bytes(), return_mmap=False), expected, err_msg=mib.name
        )
        np.testing.assert_array_equal(load_mib_data(capture, lazy=True, return_mmap=False).compute(), expected)
        (a,), (b,) = file_reader(mib), file_reader(capture)
        np.testing.assert_array_equal(a["data"], b["data"])
        assert b["original_metadata"]["hdr_file"] == a["original_metadata"]["hdr_file"]
        assert (
            b["original_metadata"]["mib_properties"]["number_of_frames_in_file"]
            == a["original_metadata"]["mib_properties"]["number_of_frames_in_file"]
        )


def test_capture_cut_off_and_without_hdr(samples, tmp_path):
    mib = samples / "Single_9_Frame_CounterDepth_12_Rows_256.mib"
    capture = capture_of(mib, tmp_path / "cut.mpx", with_hdr=False)
    raw = capture.read_bytes()
    capture.write_bytes(raw[:-5000])
    with pytest.warns(MIBWarning, match="cut-off MPX message"):
        out = load_mib_data(capture, return_mmap=False)
    np.testing.assert_array_equal(out, load_mib_data(mib, return_mmap=False)[:8])
    done = cli("info", "--json", capture)
    assert done.returncode == 0 and json.loads(done.stdout)[0]["frames"] == 8


def test_write_mib_mpx_round_trip(tmp_path):
    data = np.random.default_rng(4).integers(0, 2, size=(2, 3, 512, 512), dtype=np.uint8)
    path = write_mib(tmp_path / "quad.mpx", data, counter_depth=1, raw=True, mpx=True)
    assert path.read_bytes().startswith(b"MPX,") and not path.with_suffix(".hdr").exists()
    np.testing.assert_array_equal(load_mib_data(path, return_mmap=False), data.reshape(6, 512, 512))
    views = load_mib_data(path, navigation_shape=(3, 2))
    assert views.shape == (2, 3, 512 * 512 // 64)


def test_convert_writes_one_file_per_counter(tmp_path):
    frames = np.random.default_rng(5).integers(0, 60, size=(24, 32, 256), dtype=np.uint8)
    path = write_mib(
        tmp_path / "both.mib",
        frames,
        counter=np.tile([1, 0], 12),
        hdr={"Active Counters": "Both", "ScanX": 4, "ScanY": 3, "Frames in Acquisition": 24},
    )
    done = cli("convert", path, "-o", tmp_path / "out", "--format", "hspy")
    assert done.returncode == 0, done.stderr
    c0 = hs.load(tmp_path / "out" / "both_counter0.hspy")
    c1 = hs.load(tmp_path / "out" / "both_counter1.hspy")
    np.testing.assert_array_equal(c0.data, frames[1::2].reshape(3, 4, 32, 256)[..., ::-1, :])
    np.testing.assert_array_equal(c1.data, frames[0::2].reshape(3, 4, 32, 256)[..., ::-1, :])
