"""Conversion on a dask.distributed cluster (issue 27, part 2): the archive an in-process
conversion writes, byte for byte, from blocks read and written by the workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import write_two_counters
from servers import SERVERS, printed_port, running

from rsciio_mib_plugin import convert, write_mib

RNG = np.random.default_rng(2727)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two worker processes on loopback, their scratch space under the test's folder."""
    import distributed  # in the tests extra: the cluster path is tested everywhere, never skipped

    folder = tmp_path_factory.mktemp("dask")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            local_directory=str(folder),
        ) as local,
        distributed.Client(local) as client,
    ):
        yield client


def _chunk_files(folder: Path) -> dict[str, bytes]:
    """The data chunk files of the zspy archives under ``folder``, by path."""
    files = (p for p in sorted(folder.rglob("*")) if p.is_file() and "data" in p.parts[-2:-1])
    return {str(p.relative_to(folder)): p.read_bytes() for p in files if not p.name.startswith(".")}


def _scan(tmp_path, lost=False):
    y, x = np.ogrid[:64, :256]
    disc = ((y - 32) ** 2 + (x - 128) ** 2 < 10**2) * 30
    data = RNG.poisson(disc + 1, size=(12, 16, 64, 256)).astype(np.uint16)
    return write_mib(tmp_path / "scan.mib", data, hdr={"ScanX": 16, "ScanY": 12})


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 1 MiB instead of 32 MiB: a small scan makes many tasks."""
    import functools

    from rsciio_mib_plugin.conversion import archive
    from rsciio_mib_plugin.conversion.blocks import BlockPlan

    monkeypatch.setattr(archive, "BlockPlan", functools.partial(BlockPlan, block_bytes=1 << 20))


@pytest.mark.parametrize("options", [{}, {"bin_navigation": 2, "compression": "zstd"}, {"format": "hspy"}])
def test_cluster_archive_equals_the_in_process_one(cluster, tmp_path, small_blocks, options):
    import hyperspy.api as hs
    from distributed import get_task_stream

    path = _scan(tmp_path)
    here = convert(path, tmp_path / "here", **options)
    with get_task_stream(cluster) as tasks:
        there = convert(path, tmp_path / "there", scheduler=cluster, **options)
    blocks = [t for t in tasks.data if "block_task" in t["key"]]
    assert len(blocks) >= 2
    if not options:  # 8 blocks: spread over both workers
        assert len({t["worker"] for t in blocks}) == 2
    fmt = options.get("format", "zspy")
    a, b = hs.load(tmp_path / "here" / f"scan.{fmt}"), hs.load(tmp_path / "there" / f"scan.{fmt}")
    np.testing.assert_array_equal(a.data, b.data)
    mine, theirs = a.metadata.Summaries.as_dictionary(), b.metadata.Summaries.as_dictionary()
    for key, value in mine.items():
        if isinstance(value, dict):
            for k, v in value.items():
                np.testing.assert_array_equal(v, theirs[key][k], err_msg=f"{key}.{k}")
        else:
            np.testing.assert_array_equal(value, theirs[key], err_msg=key)
    np.testing.assert_array_equal(a.navigator.data, b.navigator.data)

    def kept(signal):  # all metadata but when the archive was loaded (and the summaries, compared above)
        md = signal.metadata.as_dictionary()
        md["General"].pop("FileIO", None)
        return repr({k: v for k, v in md.items() if k not in ("Summaries", "_HyperSpy")})

    assert kept(a) == kept(b)
    assert repr(a.original_metadata.as_dictionary()) == repr(b.original_metadata.as_dictionary())
    assert here[0]["chunks"] == there[0]["chunks"] and here[0]["bytes_written"] == there[0]["bytes_written"]
    if fmt == "zspy":  # the very chunk files
        assert _chunk_files(tmp_path / "here") == _chunk_files(tmp_path / "there")


def test_a_url_is_read_by_the_workers_by_byte_range(cluster, tmp_path, small_blocks):
    """The workers read their blocks from an HTTP server (Range requests); the archive is the one
    the local file gives in-process."""
    from distributed import get_task_stream

    site = tmp_path / "site"
    site.mkdir()
    path = _scan(site)
    with running([SERVERS / "range_http.py", site], tmp_path, printed_port) as (port, log):
        with get_task_stream(cluster) as tasks:
            convert(f"http://127.0.0.1:{port}/scan.mib", tmp_path / "there", scheduler=cluster)
        gets = [line for line in log.read_text().splitlines()[1:] if line.startswith("GET /scan.mib bytes=")]
    convert(path, tmp_path / "here")
    sizes = [int(b) - int(a) + 1 for a, b in (g.rsplit("=", 1)[1].split("-") for g in gets)]
    blocks = [t for t in tasks.data if "block_task" in t["key"]]
    stored_frame = path.stat().st_size // (12 * 16)
    # 1 MiB blocks: 2 scan lines of 16 frames each, one range request apiece, on both workers
    assert sizes.count(2 * 16 * stored_frame) == len(blocks) == 6
    assert len({t["worker"] for t in blocks}) == 2
    assert _chunk_files(tmp_path / "here") == _chunk_files(tmp_path / "there")


def test_command_line_scheduler(cluster, tmp_path):
    path = _scan(tmp_path)
    address = cluster.scheduler.address
    done = subprocess.run(
        [sys.executable, "-m", "rsciio_mib_plugin", "convert", path, "-o", tmp_path / "out", "--scheduler", address],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "scan.zspy: (16, 12|256, 64) uint16" in done.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "rsciio_mib_plugin",
            "convert",
            path,
            "-o",
            tmp_path / "x",
            "--scheduler",
            "tcp://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "cannot connect to a dask scheduler" in bad.stderr
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_several_files_at_once_and_counters(cluster, tmp_path):
    import hyperspy.api as hs

    a = write_mib(tmp_path / "a.mib", RNG.integers(0, 4096, (6, 8, 64, 256), dtype=np.uint16), hdr={"ScanX": 8})
    b = write_two_counters(tmp_path / "b.mib", seed=27)
    lines = []
    reports = convert([a, b], tmp_path / "there", scheduler=cluster, done=lines.append)
    here = convert([a, b], tmp_path / "here")
    assert [r["archive"] for r in reports] == [1, 2, 3] and len(lines) == 3
    for r, h in zip(reports, here):
        np.testing.assert_array_equal(hs.load(r["output"]).data, hs.load(h["output"]).data)


def test_workers_fix_the_allocator_thresholds_kept_allocations_lifts(cluster):
    """dask's nanny fixes glibc's thresholds in every worker (MALLOC_TRIM_THRESHOLD_): the case
    :func:`.kept_allocations` is for (its effect is counted in test_allocations.py)."""
    from rsciio_mib_plugin.conversion.allocations import _fixed_thresholds

    assert all(found is not None for found in cluster.run(_fixed_thresholds).values())
