"""Data where it lives (issue 16): URLs, file objects and reference files, on loopback servers.

An HTTP server that honours Range requests (``tests/servers/range_http.py``)
and an S3-compatible server (moto in server mode, ``tests/servers/s3.py``) run
as their own processes on 127.0.0.1 with ports the system chooses, and are
ended by their own ids. Every wait is bounded.
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from servers import SERVERS, printed_port, running

from rsciio_mib_plugin import MIBFormatError, MIBProperties, MIBWarning, file_reader, load, load_mib_data, write_mib
from rsciio_mib_plugin.cli import main


def run_server(args, folder: Path):
    """A server script in its own process; yields ``(port, log)`` (the log holds its request lines)."""
    return running(args, folder, printed_port)


def requests(log: Path) -> list[str]:
    return log.read_text().splitlines()[1:]


@pytest.fixture(scope="module")
def site(tmp_path_factory, samples) -> Path:
    """The files served: synthetic RAW and quad scans and real samples, each with its .hdr."""
    folder = tmp_path_factory.mktemp("site")
    rng = np.random.default_rng(16)
    write_mib(
        folder / "scan.mib",
        rng.integers(0, 4096, (4, 6, 256, 256), dtype=np.uint16),
        hdr={"ScanX": 6, "ScanY": 4},
    )
    write_mib(folder / "raw.mib", rng.integers(0, 4096, (3, 4, 256, 256), dtype=np.uint16), raw=True)
    lost = write_mib(folder / "lost.mib", rng.integers(0, 4096, (24, 256, 256), dtype=np.uint16), hdr=False)
    size = lost.stat().st_size // 24
    raw = lost.read_bytes()
    lost.write_bytes(raw[: 3 * size] + raw[4 * size :])  # frame number 4 never arrived
    stated = write_mib(folder / "stated.mib", rng.integers(0, 4096, (4, 6, 256, 256), dtype=np.uint16))
    raw = stated.read_bytes()
    stated.write_bytes(raw[: 5 * size] + raw[7 * size :])  # numbers 6 and 7 lost; the .hdr states 24 frames
    write_mib(folder / "quad.mib", rng.integers(0, 64, (2, 3, 512, 512), dtype=np.uint8))
    write_mib(folder / "quad_raw.mib", rng.integers(0, 2, (2, 3, 512, 512)).astype(bool), raw=True)
    for name in (
        "001_4x2_6bit",
        "Single_9_Frame_CounterDepth_12_Rows_256",
        "Quad_9_Frame_CounterDepth_24_Rows_256",
        "Quad_9_Frame_CounterDepth_1_Rows_256RAW",
    ):
        for suffix in (".mib", ".hdr"):
            shutil.copy(samples / (name + suffix), folder / (name + suffix))
    return folder


FILES = ("scan", "raw", "quad", "quad_raw", "001_4x2_6bit", "Single_9_Frame_CounterDepth_12_Rows_256",
         "Quad_9_Frame_CounterDepth_24_Rows_256", "Quad_9_Frame_CounterDepth_1_Rows_256RAW")  # fmt: skip


@pytest.fixture(scope="module")
def http(site, tmp_path_factory):
    with run_server([SERVERS / "range_http.py", site], tmp_path_factory.mktemp("http")) as (port, log):
        yield f"http://127.0.0.1:{port}", log


@pytest.fixture(scope="module")
def s3(site, tmp_path_factory):
    import boto3

    with run_server([SERVERS / "s3.py"], tmp_path_factory.mktemp("s3")) as (port, _):
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1"
        )
        client.create_bucket(Bucket="scans")
        for path in site.glob("*.*"):
            if path.suffix in (".mib", ".hdr"):
                client.upload_file(str(path), "scans", path.name)
        options = {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        yield "s3://scans", options


def _remote(kind, http, s3):
    if kind == "http":
        return http[0], {}
    return s3


@pytest.mark.parametrize("kind", ["http", "s3"])
def test_remote_reads_equal_local_reads(kind, site, http, s3):
    base, options = _remote(kind, http, s3)
    for name in FILES:
        url, local = f"{base}/{name}.mib", site / f"{name}.mib"
        expected = load_mib_data(local, return_mmap=False)
        np.testing.assert_array_equal(load_mib_data(url, return_mmap=False, storage_options=options), expected)
        lazy = load_mib_data(url, lazy=True, return_mmap=False, storage_options=options)
        np.testing.assert_array_equal(lazy.compute(), expected)
        stored = load_mib_data(url, storage_options=options)  # frames as stored (no memory map of a URL)
        np.testing.assert_array_equal(stored, load_mib_data(local))
        (d,) = file_reader(url, lazy=True, storage_options=options)[:1]
        (e,) = file_reader(local)[:1]
        np.testing.assert_array_equal(d["data"].compute(), e["data"])
        assert d["axes"] == e["axes"]
        assert (
            d["original_metadata"]["mib_plugin"]["navigation_shape_rule"]
            == (e["original_metadata"]["mib_plugin"]["navigation_shape_rule"])
        )


def test_distributed_workers_read_urls(site, http, s3):
    import distributed

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        for base, options in ((http[0], {}), s3):
            for name in ("scan", "quad_raw"):
                lazy = load_mib_data(
                    f"{base}/{name}.mib", lazy=True, return_mmap=False, chunks=(1, 256, 256), storage_options=options
                )
                assert lazy.npartitions > 1
                expected = load_mib_data(site / f"{name}.mib", return_mmap=False)
                np.testing.assert_array_equal(client.compute(lazy).result(), expected)


def test_tasks_carry_the_url_and_options_not_connections(s3):
    base, options = s3
    lazy = load_mib_data(f"{base}/scan.mib", lazy=True, return_mmap=False, storage_options=options)
    copy = pickle.loads(pickle.dumps(lazy))
    np.testing.assert_array_equal(copy.compute(), lazy.compute())
    from rsciio_mib_plugin.sources.source import Remote

    remote = Remote(f"{base}/scan.mib", options)
    assert repr(remote) == f"Remote('{base}/scan.mib')"  # the options (credentials) are never shown
    assert pickle.loads(pickle.dumps(remote)).storage_options == options


def test_opening_makes_at_most_three_requests(http):
    base, log = http
    before = len(requests(log))
    prop = MIBProperties.from_path(f"{base}/scan.mib")
    opened = requests(log)[before:]
    assert 2 <= len(opened) <= 3, opened  # size, the first 64 KiB, the .hdr
    assert prop.hdr_path == f"{base}/scan.hdr" and prop.number_of_frames_in_file == 24
    before = len(requests(log))
    (d,) = file_reader(f"{base}/scan.mib", lazy=True)
    assert d["data"].shape == (4, 6, 256, 256)  # ScanX/ScanY from the .hdr
    assert len(requests(log)[before:]) <= 3


def test_references_read_in_place_with_plain_zarr(site, http, s3, tmp_path):
    import fsspec
    import zarr

    for (base, options), protocol in (((http[0], {}), "http"), (s3, "s3")):
        refs = tmp_path / f"{protocol}.json"
        argv = ["reference", f"{base}/scan.mib", "-o", str(refs)]
        assert main(argv + (["--storage-options", json.dumps(options)] if options else [])) == 0
        mapper = fsspec.get_mapper("reference://", fo=str(refs), remote_protocol=protocol, remote_options=options)
        array = zarr.open(mapper, mode="r")["data"]
        assert array.shape == (4, 6, 256, 256) and array.dtype == np.dtype(">u2")
        assert array.chunks == (1, 1, 256, 256)
        assert array.attrs["_ARRAY_DIMENSIONS"] == ["y", "x", "ky", "kx"]
        np.testing.assert_array_equal(
            array[...], load_mib_data(site / "scan.mib", return_mmap=False).reshape(4, 6, 256, 256)
        )
        (d,) = file_reader(str(refs), storage_options=options)
        (e,) = file_reader(site / "scan.mib")
        np.testing.assert_array_equal(d["data"], e["data"])
        assert d["axes"] == e["axes"]
        assert d["metadata"]["General"]["title"] == e["metadata"]["General"]["title"]
        signal = load(str(refs), lazy=True, storage_options=options)
        np.testing.assert_array_equal(signal.data.compute(), e["data"])
    for name in ("Single_9_Frame_CounterDepth_12_Rows_256", "quad", "001_4x2_6bit"):  # local targets too
        main(["reference", str(site / f"{name}.mib"), "-o", str(tmp_path / f"{name}.json")])
        (d,), (e,) = file_reader(str(tmp_path / f"{name}.json"), lazy=True), file_reader(site / f"{name}.mib")
        np.testing.assert_array_equal(d["data"].compute(), e["data"])
    with pytest.raises(MIBFormatError, match="RAW .*cannot|a zarr reference can only point at stored pixels"):
        main(["--debug", "reference", str(site / "raw.mib"), "-o", str(tmp_path / "raw.json")])
    assert not (tmp_path / "raw.json").exists()


def test_bad_urls_are_clear_errors(site, http, tmp_path):
    base, _ = http
    began = time.monotonic()
    with pytest.raises(FileNotFoundError, match=f"{base}/missing.mib"):
        load_mib_data(f"{base}/missing.mib")
    with run_server([SERVERS / "range_http.py", site, "--ignore-range"], tmp_path) as (port, _):
        url = f"http://127.0.0.1:{port}/scan.mib"
        with pytest.raises(OSError, match=f"{url}: asked for bytes 0-65535 .*ignores Range requests"):
            load_mib_data(url, return_mmap=False)
    with run_server([SERVERS / "range_http.py", site, "--drop-after", "100000"], tmp_path) as (port, _):
        url = f"http://127.0.0.1:{port}/scan.mib"
        # Opening reads 64 KiB (under the cut); the frames are cut off mid-range.
        prop = MIBProperties.from_path(url)
        with pytest.raises(OSError, match=rf"{url}: reading bytes \d+-\d+ failed"):
            load_mib_data(url, mib_prop=prop, return_mmap=False)
        with pytest.raises(OSError, match=url):
            load_mib_data(url, mib_prop=prop, lazy=True, return_mmap=False).compute()
    assert time.monotonic() - began < 120
    with pytest.raises(ImportError, match="needs a package that is not installed .*install gcsfs"):
        load_mib_data("gcs://bucket/scan.mib")  # gcsfs is not installed
    with pytest.raises(ValueError, match="storage_options.*apply to URLs"):
        load_mib_data(site / "scan.mib", storage_options={"anon": True})


def test_file_objects(site):
    local = site / "scan.mib"
    expected = file_reader(local)[0]
    with open(local, "rb") as f:
        (d,) = file_reader(f)
        np.testing.assert_array_equal(d["data"], expected["data"])
        assert d["axes"] == expected["axes"]  # its .hdr found beside the path it was opened from
        lazy = load_mib_data(f, lazy=True, return_mmap=False)
        np.testing.assert_array_equal(lazy.compute(), load_mib_data(local, return_mmap=False))
        with pytest.raises(TypeError, match="cannot go to another process"):
            pickle.dumps(lazy)
    buffer = io.BytesIO((site / "raw.mib").read_bytes())  # no name, no .hdr: the MQ1A depth decodes it
    np.testing.assert_array_equal(
        load_mib_data(buffer, return_mmap=False), load_mib_data(site / "raw.mib", return_mmap=False)
    )


def test_lost_frames_in_a_url_are_reported_when_read(site, http):
    """A URL opens with three requests, so its frame numbers are not all read: frames stay in file
    order, and the headers read with the pixels say where numbers jump."""
    url = f"{http[0]}/lost.mib"
    with pytest.warns(MIBWarning, match=r"stored frame 3 holds frame number 5, not 4: frames before it were lost"):
        remote = load_mib_data(url, return_mmap=False)
    np.testing.assert_array_equal(remote, load_mib_data(site / "lost.mib", return_mmap=False)[np.r_[0:3, 4:24]])


@pytest.mark.parametrize("kind", ["http", "s3"])
def test_lost_frames_in_a_url_with_its_hdr_are_placed(kind, site, http, s3):
    """The .hdr states more frames than the URL holds: its frame numbers are read (by bisection)."""
    base, options = _remote(kind, http, s3)
    with pytest.warns(MIBWarning, match=r"2 frame\(s\) lost during acquisition \(frame numbers 6-7\)"):
        (remote,) = file_reader(f"{base}/stated.mib", flip_y=False, storage_options=options)
    (local,) = quietly_read(site / "stated.mib")
    np.testing.assert_array_equal(remote["data"], local["data"])
    assert remote["data"].shape[:2] == (4, 6) and not remote["data"][0, 5:7].any()


def quietly_read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MIBWarning)
        return file_reader(path, flip_y=False)


def test_load_gives_what_hs_load_gives(site, http):
    import hyperspy.api as hs

    base, _ = http
    remote, local = load(f"{base}/scan.mib", lazy=True), hs.load(site / "scan.mib")
    assert type(remote).__name__ == "Lazy" + type(local).__name__
    np.testing.assert_array_equal(remote.data.compute(), local.data)
    assert remote.metadata.General.title == local.metadata.General.title
    assert remote.metadata.General.FileIO["0"].io_plugin == "rsciio_mib_plugin"
    assert remote.axes_manager.navigation_shape == local.axes_manager.navigation_shape


def test_command_line_takes_urls(site, s3, tmp_path, capsys):
    base, options = s3
    url, opts = f"{base}/scan.mib", ["--storage-options", json.dumps(options)]
    assert main(["info", url, "--json", *opts]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert report["file"] == url and report["hdr"] == f"{base}/scan.hdr"
    assert report["datasets"][0]["navigation_shape"] == [6, 4] and report["frames"] == 24
    assert main(["view", url, "-o", str(tmp_path / "v.png"), *opts]) == 0
    assert (tmp_path / "v.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["convert", url, "-o", str(tmp_path / "out"), *opts]) == 0
    import hyperspy.api as hs

    np.testing.assert_array_equal(hs.load(tmp_path / "out" / "scan.zspy").data, hs.load(site / "scan.mib").data)
    assert main(["info", f"{base}/nothing.mib", *opts]) == 1
    assert f"no such file: '{base}/nothing.mib'" in capsys.readouterr().err


# --- hostile servers (issue 23, items 14-17 and 20) ---------------------------------------------


def test_a_403_for_a_missing_hdr_is_a_missing_hdr(site, tmp_path):
    """S3 and CDNs answer 403 for a key that is not there: the .mib still loads, quietly."""
    with run_server([SERVERS / "range_http.py", site, "--missing-status", "403"], tmp_path) as (port, _):
        base = f"http://127.0.0.1:{port}"
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            np.testing.assert_array_equal(
                load_mib_data(f"{base}/lost.mib", last_frame=3, return_mmap=False),
                load_mib_data(site / "lost.mib", return_mmap=False)[:3],
            )
        assert not [str(w.message) for w in seen if ".hdr" in str(w.message)]
        assert MIBProperties.from_path(f"{base}/lost.mib").hdr_path is None  # lost.mib has none
        with pytest.raises(FileNotFoundError, match=f"no such file: '{base}/missing.mib'"):
            load_mib_data(f"{base}/missing.mib")


def test_a_huge_answer_for_the_hdr_is_not_read(site, tmp_path):
    """The .hdr request is answered with 2.5 GB: the answer is dropped after at most 1 MiB."""
    with run_server([SERVERS / "range_http.py", site, "--endless", "scan.hdr"], tmp_path) as (port, log):
        url = f"http://127.0.0.1:{port}/scan.mib"
        with pytest.warns(
            MIBWarning,
            match=r"scan.hdr: cannot read the .hdr side file \(asked for bytes 0-1048576 \(1048577 bytes\) and got more",
        ):
            data = load_mib_data(url, return_mmap=False)
        assert data.shape == (24, 256, 256)  # from the frame headers only
        deadline = time.monotonic() + 30
        while "endless: sent" not in log.read_text():
            assert time.monotonic() < deadline, "the server still sends"
            time.sleep(0.05)
        sent = int(log.read_text().split("endless: sent ")[1].split()[0])
        assert sent < 64 << 20, sent  # what the socket buffers took before the client hung up
        print(f"the endless server sent {sent} bytes")


def test_a_server_that_never_answers_times_out(site, tmp_path):
    import aiohttp

    from rsciio_mib_plugin.sources.http import CONNECT_SECONDS, READ_SECONDS, with_timeouts

    default = with_timeouts("https", {})["client_kwargs"]["timeout"]
    assert (default.sock_connect, default.sock_read) == (CONNECT_SECONDS, READ_SECONDS) == (10, 30)
    assert with_timeouts("s3", {})["config_kwargs"] == {"connect_timeout": 10, "read_timeout": 30}
    mine = aiohttp.ClientTimeout(sock_connect=60)
    assert with_timeouts("http", {"client_kwargs": {"timeout": mine}})["client_kwargs"]["timeout"] is mine
    with run_server([SERVERS / "range_http.py", site, "--silent"], tmp_path) as (port, _):
        url = f"http://127.0.0.1:{port}/scan.mib"
        options = {"client_kwargs": {"timeout": aiohttp.ClientTimeout(sock_connect=1, sock_read=1)}}
        began = time.monotonic()
        with pytest.raises(OSError, match=f"{url}: cannot read it"):
            load_mib_data(url, storage_options=options)
        assert time.monotonic() - began < 20


def test_a_range_answered_late_is_caught(site, tmp_path):
    """A server answers every range one frame late: with its Content-Range honest, an error; with
    it lying, the frame headers read with the pixels say so, also for row-split lazy chunks."""
    frame = (site / "scan.mib").stat().st_size // 24
    with run_server([SERVERS / "range_http.py", site, "--shift", str(frame)], tmp_path) as (port, _):
        url = f"http://127.0.0.1:{port}/scan.mib"
        lazy = load_mib_data(url, lazy=True, return_mmap=False, chunks=(2, 256, 256))
        with pytest.raises(OSError, match=rf"{url}: asked for bytes (\d+)-\d+ and the server answers bytes (?!\1)"):
            lazy.compute()
    with run_server([SERVERS / "range_http.py", site, "--shift", str(frame), "--lie"], tmp_path) as (port, _):
        url = f"http://127.0.0.1:{port}/scan.mib"
        lazy = load_mib_data(url, lazy=True, return_mmap=False, chunks=(2, 256, 256))
        with pytest.warns(MIBWarning, match=r"stored frame 2 holds frame number 4, not 3"):
            lazy[2:4].compute()
        rows = load_mib_data(url, lazy=True, return_mmap=False, chunks=(2, 64, 256))
        with pytest.warns(MIBWarning, match=r"stored frame 2 holds frame number 4, not 3"):
            rows[2:4, 64:128].compute()
    with run_server([SERVERS / "range_http.py", site, "--shift", "1000", "--lie"], tmp_path) as (port, _):
        url = f"http://127.0.0.1:{port}/scan.mib"
        with pytest.raises(MIBFormatError, match="scan.mib, frame 2"):  # out of step: not a header at all
            load_mib_data(url, lazy=True, return_mmap=False, chunks=(2, 256, 256))[2:4].compute()


def test_a_presigned_urls_query_is_never_recorded(site, http, tmp_path):
    from rsciio_mib_plugin import convert

    base, _ = http
    url = f"{base}/scan.mib?X-Amz-Credential=KEY&X-Amz-Signature=s3cr3t/abc"
    (d,) = file_reader(url, lazy=True)
    assert "s3cr3t" not in repr(d["metadata"]) + repr(d["original_metadata"])
    assert d["metadata"]["General"]["original_filename"] == "scan.mib"
    (report,) = convert(url, tmp_path)
    assert Path(report["output"]).name == "scan.zspy" and "s3cr3t" not in repr(report)
    archive = tmp_path / "scan.zspy"
    assert not any("s3cr3t" in p.read_text(errors="replace") for p in archive.rglob("*") if p.is_file())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.zspy"]
    assert main(["reference", url, "-o", str(tmp_path / "scan.json")]) == 0
    assert "s3cr3t" not in (tmp_path / "scan.json").read_text()
    with pytest.raises(FileNotFoundError) as err:
        load_mib_data(f"{base}/missing.mib?sig=s3cr3t")
    assert "s3cr3t" not in str(err.value)


class Trickle:
    """A legal but unhelpful file object: ``read`` returns at most 100 bytes, ``seek`` returns None."""

    def __init__(self, data: bytes):
        self._file = io.BytesIO(data)

    def seek(self, offset, whence=0):
        self._file.seek(offset, whence)

    def tell(self):
        return self._file.tell()

    def read(self, n=-1):
        return self._file.read(100 if n < 0 else min(n, 100))


def test_file_objects_with_short_reads(site):
    """Issue 23, item 22: short reads are read again, a seek returning None is fine."""
    expected = load_mib_data(site / "scan.mib", return_mmap=False)
    np.testing.assert_array_equal(load_mib_data(Trickle((site / "scan.mib").read_bytes()), return_mmap=False), expected)
    lazy = load_mib_data(Trickle((site / "scan.mib").read_bytes()), lazy=True, return_mmap=False, chunks=(2, 64, 256))
    np.testing.assert_array_equal(lazy.compute(), expected)
    with pytest.raises(MIBFormatError, match=r"<Trickle>: 1000 bytes hold no complete frame"):
        load_mib_data(Trickle((site / "scan.mib").read_bytes()[:1000]), return_mmap=False)
