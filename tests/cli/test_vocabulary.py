"""One vocabulary, true figures (issue 25): what the command line imports, says and exits with."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from rsciio_mib_plugin import convert, write_mib

RNG = np.random.default_rng(25)


def cli(*args, cwd=None, importtime: bool = False):
    env = dict(os.environ, MPLBACKEND="Agg")
    flags = ["-X", "importtime"] if importtime else []
    return subprocess.run(
        [sys.executable, *flags, "-m", "rsciio_mib_plugin", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vocabulary")
    data = RNG.poisson(3, size=(6, 8, 256, 256)).astype(np.uint16)
    return write_mib(folder / "scan.mib", data, hdr={"ScanX": 8, "ScanY": 6})


@pytest.mark.parametrize("command", ["info", "view", "convert"])
def test_commands_do_not_import_pyxem(scan, tmp_path, command):
    """Writing an archive or a picture needs no signal class: pyxem took about 6 s to import."""
    extra = {"info": [], "view": ["-o", tmp_path / "v.png"], "convert": ["-o", tmp_path / "out"]}[command]
    done = cli(command, scan, *extra, importtime=True)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert imported and not [m for m in imported if m.split(".")[0] == "pyxem"]


def test_convert_reports_the_speed_of_the_conversion(scan, tmp_path):
    """Its MB/s is the bytes over the time the conversion took (not the time of imports before it)."""
    import rsciio.zspy  # noqa: F401  - imported before the clock, as the command line does before its own

    began = time.perf_counter()
    (report,) = convert(scan, tmp_path)
    seconds = time.perf_counter() - began
    assert report["bytes_read"] == os.path.getsize(scan)
    assert report["seconds"] <= seconds
    assert abs(report["bytes_read"] / report["seconds"] / (report["bytes_read"] / seconds) - 1) < 0.2


@pytest.mark.parametrize(
    "args, option",
    [
        (["convert", "{scan}", "-o", "{out}", "--threads", "0"], "--threads"),
        (["convert", "{scan}", "-o", "{out}", "--level", "12"], "--level"),
        (["convert", "{scan}", "-o", "{out}", "--chunks", "1,1,1,1"], "--chunks"),
        (["convert", "{scan}", "-o", "{out}", "--chunks", "1,x"], "--chunks"),
        (["convert", "{scan}", "-o", "{out}", "--format", "tiff"], "--format"),
        (["record", "-o", "{out}/r.mib", "--timeout", "-1"], "--timeout"),
        (["record", "-o", "{out}/r.mib", "--frames", "0"], "--frames"),
        (["view", "{scan}", "--navigation-shape", "0,0"], "--navigation-shape"),
        (["info", "{scan}", "--storage-options", "{{"], "--storage-options"),
    ],
)
def test_every_usage_error_exits_2_in_one_line(scan, tmp_path, args, option):
    done = cli(*[a.format(scan=scan, out=tmp_path / "out") for a in args])
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and option in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def test_messages_in_the_house_style(scan, tmp_path):
    """Existing outputs are refused naming --overwrite (never `overwrite=True`); OS errors name the path."""
    out = tmp_path / "out"
    assert cli("convert", scan, "-o", out).returncode == 0
    done = cli("convert", scan, "-o", out)
    assert done.returncode == 1
    assert done.stderr == f"rsciio-mib convert: error: {out / 'scan.zspy'} exists; add --overwrite to replace\n"
    (tmp_path / "file").write_text("")
    done = cli("view", scan, "-o", tmp_path / "file" / "v.png")
    assert done.returncode == 1 and "Errno" not in done.stderr and "overwrite=True" not in done.stderr
    assert str(tmp_path / "file") in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_a_missing_optional_package_is_one_sentence_naming_the_extra():
    from rsciio_mib_plugin.cli import explain
    from rsciio_mib_plugin.errors import MissingPackage

    message, code = explain(MissingPackage("reading s3://bucket/scan.mib", "s3fs", "remote"), {})
    assert code == 1
    assert message == (
        "reading s3://bucket/scan.mib needs s3fs, which the 'remote' extra installs "
        '(pip install ".[remote]" in the rsciio_mib_plugin folder)'
    )
    assert message.count(";") == 0 and "install it with" not in message


def test_info_says_what_microscopists_log(scan, tmp_path):
    """Settings from a full .hdr, the zone of every time, HyperSpy's shape; the same for a reference file."""
    from rsciio_mib_plugin import write_references

    done = cli("info", scan)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "  shape         (8, 6|256, 256), a scan from hdr ScanX/ScanY" in lines
    assert "  settings      SPM, gain SLGM, thresholds 2, 511 keV, bias 120 V positive" in lines
    assert "  detector      Medipix 3RX, Merlin Quad, software 1.6.1.217" in lines
    assert any(line.startswith("  frame times   ") and line.count(" UTC") == 2 for line in lines)
    assert any(line.startswith("  started       ") and line.endswith("Merlin PC local time (.hdr)") for line in lines)
    write_references(scan, tmp_path / "ref.json")
    ref = cli("info", tmp_path / "ref.json")
    assert ref.returncode == 0, ref.stderr
    assert f"  reference to  {scan}" in ref.stdout.splitlines()
    assert ref.stdout.split("\n", 1)[1].replace(f"  reference to  {scan}\n", "") == done.stdout.split("\n", 1)[1]
    (tmp_path / "bad.json").write_text('{"version": 1, "refs": {"data/0.0.0": ["/etc/passwd", 0, 8]}}')
    bad = cli("info", tmp_path / "bad.json")
    assert bad.returncode == 1 and "not a .mib file; refused" in bad.stderr


def test_convert_says_shapes_as_hyperspy(scan, tmp_path):
    done = cli("convert", scan, "-o", tmp_path)
    assert done.returncode == 0, done.stderr
    assert ": (8, 6|256, 256) uint16, " in done.stdout


def test_missing_url_backends_are_one_sentence(tmp_path):
    """A backend of the `remote` extra names the extra; any other names what fsspec asks for."""
    done = cli("info", "gcs://bucket/scan.mib")
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "reading gcs://bucket/scan.mib needs a package that is not installed (" in done.stderr
    assert "install it with" not in done.stderr
    # s3fs hidden from this process: what a clone without the extra sees
    code = (
        "import sys; sys.modules['s3fs'] = None\n"
        "from rsciio_mib_plugin.cli import main\n"
        "sys.exit(main(['info', 's3://bucket/scan.mib']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        "rsciio-mib info: error: reading s3://bucket/scan.mib needs s3fs, which the 'remote' extra installs "
        '(pip install ".[remote]" in the rsciio_mib_plugin folder)\n'
    )
