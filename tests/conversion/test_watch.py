"""A watched folder (issue 27, part 1): each acquisition converted once, when complete, never while written."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import grow, sigterm, until

from rsciio_mib_plugin import file_reader, watch_folder, write_mib

RNG = np.random.default_rng(27)


def _data(path) -> np.ndarray:
    return np.asarray(file_reader(path)[0]["data"])


def _archive(path) -> np.ndarray:
    import hyperspy.api as hs

    return np.asarray(hs.load(path).data)


@pytest.fixture
def sources(tmp_path):
    """Finished acquisitions to copy into the watched folder: one announcing its frame count, one not."""
    folder = tmp_path / "sources"
    folder.mkdir()
    counted = write_mib(
        folder / "counted.mib",
        RNG.integers(0, 4096, (4, 6, 32, 256), dtype=np.uint16),
        hdr={"ScanX": 6, "ScanY": 4, "Frames in Acquisition": 24},
    )
    silent = write_mib(folder / "silent.mib", RNG.integers(0, 64, (12, 32, 256), dtype=np.uint8), hdr=False)
    return counted, silent


def test_files_being_written_are_converted_once_complete(sources, tmp_path):
    counted, silent = sources
    watched, out = tmp_path / "watched", tmp_path / "out"
    watched.mkdir()
    writers = [grow(watched / "counted.mib", counted), grow(watched / "silent.mib", silent)]
    lines = []
    try:
        reports = watch_folder(watched, out, settle=1.5, idle_exit=1.0, poll=0.1, done=lines.append)
    finally:
        for writer in writers:
            writer.join(30)
    assert sorted(os.path.basename(r["output"]) for r in reports) == ["counted.zspy", "silent.zspy"]
    assert len(lines) == 2  # one report per archive, as it lands
    # converted whole: a conversion of a file still being written would hold fewer frames
    np.testing.assert_array_equal(_archive(out / "counted.zspy"), _data(counted))
    np.testing.assert_array_equal(_archive(out / "silent.zspy"), _data(silent))
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    # stopped and started again: nothing is converted twice
    assert watch_folder(watched, out, settle=0.2, idle_exit=0.3, poll=0.1) == []
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps


def test_an_interrupted_conversion_is_redone_and_its_leftovers_removed(sources, tmp_path):
    counted, _ = sources
    watched, out = tmp_path / "watched", tmp_path / "out"
    watched.mkdir()
    out.mkdir()
    for suffix in (".mib", ".hdr"):
        (watched / f"counted{suffix}").write_bytes(counted.with_suffix(suffix).read_bytes())
    stale = out / ".counted.partial-k1ll3d.zspy"  # what a run killed with SIGKILL leaves
    stale.mkdir()
    (stale / "junk").write_bytes(b"x")
    past = time.time() - 3600
    os.utime(stale, (past, past))
    mine = tmp_path / "out" / "notes.txt"  # the user's own file in the output folder stays
    mine.write_text("keep")
    (report,) = watch_folder(watched, out, settle=0.2, idle_exit=0.3, poll=0.1)
    assert not stale.exists() and mine.read_text() == "keep"
    np.testing.assert_array_equal(_archive(report["output"]), _data(counted))


def test_series_and_separate_numbered_acquisitions(tmp_path):
    watched, out = tmp_path / "watched", tmp_path / "out"
    watched.mkdir()
    frames = RNG.integers(0, 64, (8, 32, 256), dtype=np.uint8)
    write_mib(watched / "scan1.mib", frames[:4], hdr={"Frames in Acquisition": 8})  # the series' one .hdr
    write_mib(watched / "scan2.mib", frames[4:], hdr=False, first_number=5)
    for i in (1, 2):  # numbered acquisitions, each with its own .hdr
        write_mib(watched / f"run{i}.mib", frames[:3], hdr={"Frames in Acquisition": 3})
    reports = watch_folder(watched, out, settle=0.2, idle_exit=0.3, poll=0.1)
    assert sorted(os.path.basename(r["output"]) for r in reports) == ["run1.zspy", "run2.zspy", "scan1.zspy"]
    series = _archive(out / "scan1.zspy")
    assert series.shape[0] == 8
    np.testing.assert_array_equal(series, frames[:, ::-1])


WATCH = [sys.executable, "-m", "rsciio_mib_plugin", "convert", "--watch"]


def test_command_line_watch_lines_errors_and_sigterm(sources, tmp_path):
    counted, silent = sources
    watched, out = tmp_path / "watched", tmp_path / "out"
    watched.mkdir()
    for path in (counted, silent):
        for suffix in (".mib", ".hdr"):
            if path.with_suffix(suffix).exists():
                (watched / path.with_suffix(suffix).name).write_bytes(path.with_suffix(suffix).read_bytes())
    (watched / "broken.mib").write_bytes(b"not a Merlin file at all" * 100)
    done = subprocess.run(
        [*WATCH, watched, "-o", out, "--settle", "0.3", "--idle-exit", "1"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1  # one acquisition could not be converted
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1 and "broken.mib" in errors[0] and "not a Merlin frame header" in errors[0]
    archived = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert len(archived) == 2 and all(": (" in line for line in archived)
    assert sorted(p.name for p in out.iterdir()) == ["counted.zspy", "silent.zspy"]
    # a watch with nothing to do, ended by SIGTERM as a scheduler would: exit 0, nothing left behind
    proc = subprocess.Popen([*WATCH, watched, "-o", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    stdout, _ = sigterm(proc)
    assert proc.returncode == 0 and stdout.strip().endswith("stopped")
    assert sorted(p.name for p in out.iterdir()) == ["counted.zspy", "silent.zspy"]
    usage = subprocess.run([*WATCH, watched, str(counted), "-o", out], capture_output=True, text=True, timeout=300)
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1


def test_watcher_process_with_files_written_piece_by_piece_and_recorded_live(sources, tmp_path):
    """The watcher runs as its own process; one acquisition is written piece by piece as the Merlin
    software writes it, another is recorded by `rsciio-mib record` from `rsciio-mib serve`."""
    import re as regex

    from servers import running

    counted, silent = sources
    watched, out = tmp_path / "watched", tmp_path / "out"
    watched.mkdir()
    log = tmp_path / "watch.log"
    with open(log, "w") as sink:
        watcher = subprocess.Popen(
            [*WATCH, watched, "-o", out, "--settle", "2", "--idle-exit", "3"], stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        grow(watched / "counted.mib", counted, pieces=6, pause=0.3).join(60)
        serve = ["-m", "rsciio_mib_plugin", "serve", counted, "--data-port", "0", "--control-port", "0", "--fps", "20"]

        def ports(text):
            found = regex.search(r"control port (\d+), data port (\d+)", text)
            return (int(found[1]), int(found[2])) if found else None

        with running(serve, tmp_path, ports) as ((control, data), _):
            record = [sys.executable, "-m", "rsciio_mib_plugin", "record", "-o", watched / "live.mib"]
            done = subprocess.run(
                [*record, "--data-port", str(data), "--control-port", str(control), "--start"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
        assert watcher.wait(120) == 0, log.read_text()
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait(10)
    text = log.read_text()
    assert text.count("] ") == 2, text  # one line per archive
    assert sorted(p.name for p in out.iterdir()) == ["counted.zspy", "live.zspy"]
    np.testing.assert_array_equal(_archive(out / "counted.zspy"), _data(counted))
    np.testing.assert_array_equal(_archive(out / "live.zspy"), _data(counted))


def test_sigterm_mid_conversion_leaves_no_partial_archive_and_a_restart_redoes_it(tmp_path):
    watched, out = tmp_path / "watched", tmp_path / "out"
    watched.mkdir()
    big = write_mib(
        watched / "big.mib",
        RNG.integers(0, 4096, (24, 64, 256, 256), dtype=np.uint16),  # 200 MB: the conversion takes a while
        hdr={"ScanX": 64, "ScanY": 24, "Frames in Acquisition": 1536},
    )
    proc = subprocess.Popen([*WATCH, watched, "-o", out, "--threads", "1"], stdout=subprocess.PIPE, text=True)
    started = until(lambda: out.exists() and any(p.name.startswith(".big.partial-") for p in out.iterdir()), 60)
    stdout, _ = sigterm(proc, 60)
    assert started
    assert proc.returncode == 0 and stdout.strip().endswith("stopped")
    assert list(out.iterdir()) == []  # neither an archive nor its temporary
    (report,) = watch_folder(watched, out, settle=0.2, idle_exit=0.3, poll=0.1)
    np.testing.assert_array_equal(_archive(report["output"]), _data(big))


def test_bad_arguments_are_named(tmp_path):
    for options, name in (
        ({"settle": -1}, "settle"),
        ({"idle_exit": float("inf")}, "idle_exit"),
        ({"poll": 0}, "poll"),
    ):
        with pytest.raises(ValueError, match=f"`{name}` must be a finite number of seconds"):
            watch_folder(tmp_path, tmp_path / "out", **options)
    with pytest.raises(FileNotFoundError, match="no such folder to watch"):
        watch_folder(tmp_path / "missing", tmp_path / "out", idle_exit=0)
    assert not (tmp_path / "out").exists()
