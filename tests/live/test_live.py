"""Live data (issue 15): the Merlin simulator, record, stream and follow, on loopback.

Every server binds 127.0.0.1 on a port the OS chooses; every wait is bounded.
``rsciio-mib serve`` runs as its own process (ended by its own id); the
sweep over the real samples uses the same simulator class in-process.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import grow, sigterm, until
from servers import running

from rsciio_mib_plugin import MerlinCommandError, MIBFormatError, MIBWarning, load_mib_data, write_mib
from rsciio_mib_plugin.cli import main
from rsciio_mib_plugin.live import MerlinControl, follow, record, stream
from rsciio_mib_plugin.live.simulator import MerlinSimulator


@contextlib.contextmanager
def serve(path, *options, folder: Path):
    """``rsciio-mib serve`` in its own process; yields ``(control_port, data_port, log_path)``."""
    argv = ["-m", "rsciio_mib_plugin", "serve", path, "--data-port", "0", "--control-port", "0", *options]

    def ports(text):
        match = re.search(r"control port (\d+), data port (\d+)", text)
        return (int(match[1]), int(match[2])) if match else None

    with running(argv, folder, ports) as ((control, data), log):
        yield control, data, log


def _frames(kind: str, n=(3, 4)):
    """Synthetic frames of each kind: (data, write_mib options)."""
    rng = np.random.default_rng(hash(kind) % 2**32)
    if kind == "single":
        return rng.integers(0, 4096, (*n, 256, 256), dtype=np.uint16), {}
    if kind == "single RAW":
        return rng.integers(0, 4096, (*n, 256, 256), dtype=np.uint16), {"raw": True}
    if kind == "quad":
        return rng.integers(0, 64, (*n, 512, 512), dtype=np.uint8), {}
    if kind == "quad RAW":
        return rng.integers(0, 2, (*n, 512, 512)).astype(bool), {"raw": True}
    raise ValueError(kind)


def decoded(path):
    """Frames as stored, decoded (RAW too), native byte order."""
    return load_mib_data(path, return_mmap=False)


KINDS = ("single", "single RAW", "quad", "quad RAW")


@pytest.fixture(params=["splice", "recv_into + writev", "recv_into + write"])
def record_path(request, monkeypatch) -> str:
    """How ``record`` moves frames (its ``transfer``): splice (Linux), the buffered copy, and that copy
    on a system without ``os.writev`` (Windows, emulated by removing it)."""
    import os

    if request.param == "splice" and not hasattr(os, "splice"):
        pytest.skip("os.splice is Linux-only: the splice path cannot run here (both copy paths are tested)")
    if request.param == "recv_into + write":
        monkeypatch.delattr(os, "writev")
    return "splice" if request.param == "splice" else "copy"


@pytest.fixture(params=KINDS)
def written(request, tmp_path) -> Path:
    data, options = _frames(request.param)
    return write_mib(tmp_path / "scan.mib", data, **options)


def test_record_through_serve_is_byte_identical(written, tmp_path, record_path):
    with serve(written, folder=tmp_path) as (control, data, _):
        r = record(
            tmp_path / "rec.mib", transfer=record_path, data_port=data, control_port=control, start=True, timeout=20
        )
    assert r["complete"] and r["lost_frames"] == [] and r["frames"] == 12
    assert (tmp_path / "rec.mib").read_bytes() == written.read_bytes()
    assert (tmp_path / "rec.hdr").read_bytes() == written.with_suffix(".hdr").read_bytes()
    assert r["bytes"] == written.stat().st_size + 12 * 15 + written.with_suffix(".hdr").stat().st_size + 15
    np.testing.assert_array_equal(decoded(tmp_path / "rec.mib"), decoded(written))


def test_stream_and_follow_equal_the_file(written, tmp_path):
    expected = decoded(written)
    with serve(written, folder=tmp_path) as (control, data, _):
        blocks = list(stream(data_port=data, control_port=control, start=True, timeout=20, block_frames=5))
    # Blocks hold at most block_frames and are handed over when no more data wait, so how
    # the 12 frames split depends on timing; their indices must follow each other.
    assert all(1 <= len(b) <= 5 for _, b in blocks)
    assert [first for first, _ in blocks] == list(np.cumsum([0] + [len(b) for _, b in blocks[:-1]]))
    got = np.concatenate([b for _, b in blocks])
    assert got.dtype == expected.dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, expected)

    # follow: the same file written a piece at a time by another thread, frames cut mid-way.
    growing = tmp_path / "growing.mib"
    raw = written.read_bytes()
    growing.with_suffix(".hdr").write_bytes(written.with_suffix(".hdr").read_bytes())
    pieces = np.linspace(0, len(raw), 8).astype(int)

    def writer():
        with open(growing, "wb") as f:
            for a, b in zip(pieces[:-1], pieces[1:]):
                f.write(raw[a:b])
                f.flush()
                time.sleep(0.05)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        followed = list(follow(growing, timeout=10, poll=0.01))
    finally:
        thread.join(10)
    np.testing.assert_array_equal(np.concatenate([b for _, b in followed]), expected)
    assert followed[0][0] == 0 and sum(len(b) for _, b in followed) == 12


def test_serve_sweep_over_the_real_samples(samples, tmp_path):
    """Every real file recorded through the simulator comes back byte for byte, and streams as it loads."""
    files = sorted(samples.glob("*.mib"))
    assert len(files) >= 20
    for path in files:
        out = tmp_path / path.name
        with MerlinSimulator(path, data_port=0, control_port=0) as sim:
            control, data = sim.ports
            r = record(out, data_port=data, control_port=control, start=True, timeout=20)
            assert r["complete"], path.name
            # (start=True asks again while the detector is busy finishing the first acquisition)
            got = np.concatenate([b for _, b in stream(data_port=data, control_port=control, start=True, timeout=20)])
        assert out.read_bytes() == path.read_bytes(), path.name
        assert out.with_suffix(".hdr").read_bytes() == path.with_suffix(".hdr").read_bytes(), path.name
        np.testing.assert_array_equal(got, decoded(path).reshape(got.shape), err_msg=path.name)


def test_control_protocol_every_status(tmp_path):
    data, _ = _frames("single", (2, 2))
    path = write_mib(tmp_path / "scan.mib", data, hdr={"Frames per Trigger": 2})
    with serve(path, "--fps", "2", folder=tmp_path) as (control, data_port, _):
        with MerlinControl(port=control, timeout=10) as merlin:
            assert merlin.get("NUMFRAMESTOACQUIRE") == "4"  # from the .hdr
            assert merlin.get("NUMFRAMESPERTRIGGER") == "2"
            assert merlin.get("COUNTERDEPTH") == "12"
            assert merlin.get("IMAGEX") == "256"
            assert merlin.get("DETECTORSTATUS") == "0"
            merlin.set("ACQUISITIONTIME", 2.5)  # 0: stored
            assert merlin.get("ACQUISITIONTIME") == "2.5"
            with pytest.raises(MerlinCommandError, match=r"'SET,COUNTERDEPTH,7'.*status 3 \(out of range\)") as err:
                merlin.set("COUNTERDEPTH", 7)
            assert err.value.code == 3
            for request in (lambda: merlin.get("NOSUCHTHING"), lambda: merlin.cmd("DANCE")):
                with pytest.raises(MerlinCommandError, match=r"status 2 \(not recognised\)"):
                    request()
            with pytest.raises(MerlinCommandError, match="status 2"):
                merlin.set("DETECTORSTATUS", 1)  # read only
            # Busy: while an acquisition runs (4 frames at 2 fps), settings and a second start are refused.
            sock = socket.create_connection(("127.0.0.1", data_port), timeout=10)
            try:
                merlin.cmd("STARTACQUISITION")
                assert merlin.get("DETECTORSTATUS") == "1"
                for request in (lambda: merlin.set("NUMFRAMESTOACQUIRE", 9), lambda: merlin.cmd("STARTACQUISITION")):
                    with pytest.raises(MerlinCommandError, match=r"status 1 \(busy\)") as err:
                        request()
                    assert err.value.code == 1
                merlin.cmd("STOPACQUISITION")
            finally:
                sock.close()


def test_soft_trigger_and_continuous_acquisitions(tmp_path):
    data, _ = _frames("single", (2, 3))
    path = write_mib(tmp_path / "scan.mib", data)
    expected = decoded(path)
    # Triggers come from another connection while the stream waits.
    with serve(path, folder=tmp_path) as (control, data_port, _):
        with MerlinControl(port=control, timeout=10) as merlin:
            merlin.set("TRIGGERSTART", 5)
            merlin.set("NUMFRAMESPERTRIGGER", 2)

            triggered = []

            def trigger():
                for _ in range(3):
                    time.sleep(0.3)
                    with MerlinControl(port=control, timeout=10) as m:
                        triggered.append(time.monotonic())
                        m.cmd("SOFTTRIGGER")

            thread = threading.Thread(target=trigger)
            thread.start()
            got, arrived = [], []
            try:
                for first, block in stream(data_port=data_port, control_port=control, start=True, timeout=10):
                    got.append((first, block))
                    arrived += [time.monotonic()] * len(block)
            finally:
                thread.join(10)
        # Each trigger releases two frames: frame i comes after trigger i // 2 was sent.
        assert len(arrived) == 6 and all(arrived[i] > triggered[i // 2] for i in range(6))
        np.testing.assert_array_equal(np.concatenate([b for _, b in got]), expected)
        # Continuous: 0 frames to acquire; the recording stops at `frames`, frame numbers run on past the file.
        with MerlinControl(port=control, timeout=10) as merlin:
            merlin.set("TRIGGERSTART", 0)
            merlin.set("NUMFRAMESTOACQUIRE", 0)
        r = record(tmp_path / "cont.mib", data_port=data_port, control_port=control, start=True, frames=15, timeout=10)
        with MerlinControl(port=control, timeout=10) as merlin:
            merlin.cmd("STOPACQUISITION")
    assert r["frames"] == 15 and r["complete"]
    np.testing.assert_array_equal(decoded(tmp_path / "cont.mib"), np.concatenate([expected] * 3)[:15])
    headers = load_mib_data(tmp_path / "cont.mib", return_mmap=True, return_headers=True)[1]
    assert [int(bytes(h).split(b",")[1]) for h in headers] == list(range(1, 16))


# --- faults ---------------------------------------------------------------------------


@pytest.fixture
def scan(tmp_path) -> Path:
    data, _ = _frames("single", (2, 4))
    return write_mib(tmp_path / "scan.mib", data)


def test_server_closing_mid_frame_keeps_every_complete_frame(scan, tmp_path, record_path, capsys):
    frame = 384 + 2 * 256 * 256
    cut = 15 + scan.with_suffix(".hdr").stat().st_size + 5 * (15 + frame) + 1000  # inside frame 5
    out = tmp_path / "rec.mib"
    with serve(scan, "--close-after", str(cut), folder=tmp_path) as (control, data, _):
        code = main(
            [
                "record",
                "-o",
                str(out),
                "--data-port",
                str(data),
                "--control-port",
                str(control),
                "--start",
                "--transfer",
                record_path,
            ]
        )
    err = capsys.readouterr().err
    assert code == 1
    assert "closed the connection after 5 frames of 8 expected inside frame 5" in err
    assert out.stat().st_size == 5 * frame
    np.testing.assert_array_equal(decoded(out), decoded(scan)[:5])


def test_lost_frames_are_reported(scan, tmp_path, record_path):
    with serve(scan, "--drop-frames", "2,3,6", folder=tmp_path) as (control, data, _):
        with pytest.warns(MIBWarning, match=r"3 frame\(s\) lost \(frame numbers jump\): 3-4, 7"):
            r = record(
                tmp_path / "rec.mib", transfer=record_path, data_port=data, control_port=control, start=True, timeout=10
            )
        assert r["lost_frames"] == [3, 4, 7] and r["frames"] == 5 and r["complete"]
        with pytest.warns(MIBWarning, match="3 frame"):
            blocks = list(stream(data_port=data, control_port=control, start=True, timeout=10))
    indices = np.concatenate([np.arange(first, first + len(b)) for first, b in blocks])
    np.testing.assert_array_equal(indices, [0, 1, 4, 5, 7])
    np.testing.assert_array_equal(np.concatenate([b for _, b in blocks]), decoded(scan)[[0, 1, 4, 5, 7]])
    # The recording (5 frames, the .hdr from the HDR message) reads back with every frame at its place.
    with pytest.warns(MIBWarning, match=r"3 frame\(s\) lost during acquisition \(frame numbers 3-4, 7\)"):
        back = load_mib_data(tmp_path / "rec.mib", return_mmap=False)
    expected = decoded(scan)
    expected[[2, 3, 6]] = 0
    np.testing.assert_array_equal(back, expected)


def test_a_corrupt_frame_number_is_an_error_not_a_billion_lost_frames(scan, tmp_path):
    from rsciio_mib_plugin.format.mpx import mpx_message

    frame = 384 + 2 * 256 * 256
    body = scan.read_bytes()
    frames = [body[i * frame : (i + 1) * frame] for i in range(8)]
    head = frames[3][:384].replace(b"MQ1,000004,", b"MQ1,1000000001,", 1)
    frames[3] = head.rstrip(b"\x00").ljust(384, b"\x00") + frames[3][384:]  # the same header length
    stream_bytes = b"".join(mpx_message(f) for f in frames)
    with raw_server(stream_bytes) as port:
        with pytest.raises(
            MIBFormatError, match=r"frame 3 .*frame number 1000000001 jumps 999999997 past 3: a corrupt"
        ):
            record(tmp_path / "c.mib", data_port=port, timeout=5, frames=8)
    np.testing.assert_array_equal(decoded(tmp_path / "c.mib"), decoded(scan)[:3])


def test_nothing_arriving_is_a_timeout_naming_host_and_port(scan, tmp_path, capsys):
    with serve(scan, folder=tmp_path) as (control, data, _):  # nobody starts an acquisition
        began = time.monotonic()
        with pytest.raises(TimeoutError, match=rf"127\.0\.0\.1:{data}: no data within 0\.5 s"):
            record(tmp_path / "rec.mib", data_port=data, timeout=0.5)
        assert time.monotonic() - began < 10
        code = main(["record", "-o", str(tmp_path / "r2.mib"), "--data-port", str(data), "--timeout", "0.5"])
    assert code == 1 and f"127.0.0.1:{data}: no data within 0.5 s" in capsys.readouterr().err
    assert not (tmp_path / "rec.mib").exists() and not (tmp_path / "r2.mib").exists()
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # a port nobody listens on
    with pytest.raises(ConnectionError, match=rf"data port 127\.0\.0\.1:{port}: cannot connect"):
        record(tmp_path / "rec.mib", data_port=port, timeout=2)


@contextlib.contextmanager
def raw_server(payload: bytes):
    """A data port that sends ``payload`` to its first client, then closes."""
    with scripted_server(lambda client: client.sendall(payload)) as port:
        yield port


@contextlib.contextmanager
def scripted_server(script):
    """A port whose first client is served by ``script(client socket)``, then closed."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def run():
        with contextlib.suppress(OSError):
            client, _ = listener.accept()
            with client:
                client.settimeout(30)
                script(client)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(15)


def test_malformed_stream_names_the_byte_offset(scan, tmp_path, record_path):
    from rsciio_mib_plugin.format.mpx import mpx_message

    hdr = scan.with_suffix(".hdr").read_bytes()
    frame = 384 + 2 * 256 * 256
    body = scan.read_bytes()
    messages = [mpx_message(hdr)] + [mpx_message(body[i * frame : (i + 1) * frame]) for i in range(8)]
    bad_length = messages[0][:4] + b"00000x0001" + messages[0][14:]
    with raw_server(bad_length) as port, pytest.raises(MIBFormatError, match=r"byte offset 0\).*is not a number"):
        record(tmp_path / "a.mib", transfer=record_path, data_port=port, timeout=5)
    broken = bytearray(b"".join(messages))
    at = len(messages[0]) + 3 * len(messages[1])  # frame 3's prefix
    broken[at : at + 4] = b"XPM,"
    with raw_server(bytes(broken)) as port:
        with pytest.raises(MIBFormatError, match=rf"frame 3 \(byte offset {at + 15}\): MPX message prefix is b'XPM,"):
            record(tmp_path / "b.mib", transfer=record_path, data_port=port, timeout=5)
    np.testing.assert_array_equal(decoded(tmp_path / "b.mib"), decoded(scan)[:3])  # the frames before it are kept
    not_merlin = b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 100
    with raw_server(not_merlin) as port, pytest.raises(MIBFormatError, match=r"expected an 'MPX,<10 digits>,'"):
        list(stream(data_port=port, timeout=5))


def test_existing_files_are_not_overwritten_unless_asked(scan, tmp_path, capsys):
    out = tmp_path / "rec.mib"
    out.write_bytes(b"precious")
    with serve(scan, folder=tmp_path) as (control, data, _):
        args = ["record", "-o", str(out), "--data-port", str(data), "--control-port", str(control), "--start"]
        assert main(args) == 1
        assert "exists; add --overwrite to replace" in capsys.readouterr().err
        assert out.read_bytes() == b"precious"
        out.unlink()
        out.with_suffix(".hdr").write_bytes(b"precious")
        with pytest.raises(FileExistsError, match="rec.hdr exists"):
            record(out, data_port=data, control_port=control, start=True)
        assert out.with_suffix(".hdr").read_bytes() == b"precious" and not out.exists()
        assert main(args + ["--overwrite"]) == 0
    assert out.read_bytes() == scan.read_bytes()
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1 and re.match(r"recorded 8 frames, 1\.1 MB in [\d.]+ s \(\d+ MB/s\) -> ", summary[0])


def test_repeat_paces_and_renumbers(scan, tmp_path):
    with serve(scan, "--repeat", "3", "--fps", "40", folder=tmp_path) as (control, data, _):
        with MerlinControl(port=control) as merlin:
            assert merlin.get("NUMFRAMESTOACQUIRE") == "24"
        blocks = list(stream(data_port=data, control_port=control, start=True, timeout=10))
        r = record(tmp_path / "rec.mib", data_port=data, control_port=control, start=True, timeout=10)
    # Paced at 40 frames/s, frames are handed over as they come, not held for a full block.
    assert len(blocks) >= 6
    assert r["frames"] == 24 and 0.4 < r["seconds"] < 30
    np.testing.assert_array_equal(decoded(tmp_path / "rec.mib"), np.concatenate([decoded(scan)] * 3))
    headers = load_mib_data(tmp_path / "rec.mib", return_mmap=True, return_headers=True)[1]
    assert [int(bytes(h).split(b",")[1]) for h in headers] == list(range(1, 25))
    assert b"Frames in Acquisition (Number):\t24\r\n" in (tmp_path / "rec.hdr").read_bytes()
    assert (tmp_path / "rec.hdr").stat().st_size == scan.with_suffix(".hdr").stat().st_size


# --- follow and watch ----------------------------------------------------------------


def test_follow_ends_and_fails_clearly(scan, tmp_path):
    with pytest.raises(TimeoutError, match="did not appear within 0.2 s"):
        list(follow(tmp_path / "never.mib", timeout=0.2))
    frame = 384 + 2 * 256 * 256
    thread = grow(tmp_path / "cut.mib", scan, stop_at=5 * frame + 100)
    try:
        with pytest.warns(MIBWarning, match="stopped growing at 5 complete frames of 8 expected"):
            got = list(follow(tmp_path / "cut.mib", timeout=0.5, poll=0.01))
    finally:
        thread.join(10)
    np.testing.assert_array_equal(np.concatenate([b for _, b in got]), decoded(scan)[:5])
    # Without an expected count, the end is when the file stops growing; `frames` stops early.
    (tmp_path / "cut.hdr").unlink()
    assert sum(len(b) for _, b in follow(tmp_path / "cut.mib", timeout=0.3)) == 5
    assert sum(len(b) for _, b in follow(tmp_path / "cut.mib", frames=2, timeout=0.3)) == 2
    shrinking = tmp_path / "shrink.mib"
    shrinking.write_bytes(scan.read_bytes())

    def shrink():
        time.sleep(0.2)
        with open(shrinking, "r+b") as f:
            f.truncate(3 * frame)

    with pytest.raises(MIBFormatError, match="shrank|shortened while reading"):  # whichever it sees first
        thread = threading.Thread(target=shrink)
        thread.start()
        try:
            for _ in follow(shrinking, frames=9, timeout=5, block_frames=1, poll=0.05):
                time.sleep(0.1)
        finally:
            thread.join(10)


def test_watch_keeps_a_preview_of_a_growing_file(scan, tmp_path, capsys):
    target = tmp_path / "live.mib"
    thread = grow(target, scan, pieces=4, pause=0.3)
    try:
        code = main(["watch", str(target), "--preview", str(tmp_path / "live.png"), "--interval", "0.2"])
    finally:
        thread.join(10)
    assert code == 0
    assert capsys.readouterr().out.strip().endswith(f"8 frames seen, preview {tmp_path / 'live.png'}")
    assert (tmp_path / "live.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*part*"))


def test_silence_mid_acquisition_ends_the_recording(scan, tmp_path, record_path):
    with serve(scan, "--fps", "1", folder=tmp_path) as (control, data, _):
        with pytest.warns(MIBWarning, match=r"sent nothing for 0.4 s after [12] frames of 8 expected"):
            r = record(
                tmp_path / "rec.mib",
                transfer=record_path,
                data_port=data,
                control_port=control,
                start=True,
                timeout=0.4,
            )
    assert not r["complete"] and r["frames"] in (1, 2)
    np.testing.assert_array_equal(decoded(tmp_path / "rec.mib"), decoded(scan)[: r["frames"]])


def test_acquisition_without_hdr_message(tmp_path, record_path):
    """The HDR message is optional (docs/format.md §12): no .hdr is written, and frames= says when to stop."""
    data, _ = _frames("single", (2, 3))
    path = write_mib(tmp_path / "bare.mib", data, hdr=False)
    with serve(path, folder=tmp_path) as (control, port, _):
        with pytest.warns(MIBWarning, match="no HDR message before the frames; no .hdr written"):
            r = record(
                tmp_path / "rec.mib", transfer=record_path, data_port=port, control_port=control, start=True, frames=6
            )
        assert r["hdr"] is None and r["complete"] and r["frames"] == 6
        assert not (tmp_path / "rec.hdr").exists()
        assert (tmp_path / "rec.mib").read_bytes() == path.read_bytes()
        # Without a count, an open-ended stream ends when the data stop for `timeout` seconds.
        got = list(stream(data_port=port, control_port=control, start=True, timeout=0.5))
        # Recorded again over an earlier recording that had a .hdr (here spelled .HDR): that .hdr
        # described another acquisition and would give this one its scan shape: it goes.
        (tmp_path / "rec.HDR").write_text("ScanX:\t7\nScanY:\t9\n")
        with pytest.warns(MIBWarning, match=r"the previous recording's .*rec\.HDR is removed"):
            record(
                tmp_path / "rec.mib",
                transfer=record_path,
                data_port=port,
                control_port=control,
                start=True,
                frames=6,
                overwrite=True,
            )
        assert not (tmp_path / "rec.HDR").exists()
    np.testing.assert_array_equal(np.concatenate([b for _, b in got]), decoded(path))


def test_a_control_reply_of_implausible_length_is_refused_before_it_arrives():
    """'MPX,9999999999,' would ask for 10 GB: replies are capped at a few KiB."""
    with raw_server(b"MPX,9999999999,GET,") as port:
        with MerlinControl(port=port, timeout=5) as merlin, pytest.raises(MIBFormatError, match="more than the 4096"):
            merlin.get("COUNTERDEPTH")


def test_follow_places_frames_by_their_numbers(tmp_path):
    data, _ = _frames("single", (1, 6))
    first = write_mib(tmp_path / "a.mib", data[:, :3], hdr=False)
    second = write_mib(tmp_path / "b.mib", data[:, 3:], hdr=False, first_number=6)  # numbers 4 and 5 lost
    joined = tmp_path / "joined.mib"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    with pytest.warns(MIBWarning, match=r"2 frame\(s\) lost \(frame numbers jump\): 4-5"):
        blocks = list(follow(joined, timeout=0.3))
    indices = np.concatenate([np.arange(i, i + len(b)) for i, b in blocks])
    np.testing.assert_array_equal(indices, [0, 1, 2, 5, 6, 7])
    np.testing.assert_array_equal(np.concatenate([b for _, b in blocks]), data.reshape(6, 256, 256))


@pytest.mark.parametrize(
    "keywords, message",
    [
        ({"frames": -1}, "`frames` must be a positive"),
        ({"frames": 2.5}, "`frames` must be a positive"),
        ({"timeout": None}, "`timeout` must be a number"),
        ({"timeout": float("inf")}, "`timeout` must be a positive, finite"),
        ({"timeout": 0}, "`timeout` must be a positive, finite"),
    ],
)
def test_live_arguments_are_checked_before_anything_is_written(tmp_path, keywords, message):
    """Nothing listens on the port: a bad argument is refused first, and no file is left to block a retry."""
    with pytest.raises((ValueError, TypeError), match=message):
        record(tmp_path / "r.mib", data_port=1, **keywords)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises((ValueError, TypeError), match=message):
        next(stream(data_port=1, **keywords))
    with pytest.raises((ValueError, TypeError), match=message):
        next(follow(tmp_path / "r.mib", **keywords))
    with pytest.raises(ValueError, match="`block_frames` must be a positive"):
        next(stream(data_port=1, block_frames=-1))


def _messages(scan: Path) -> list[bytes]:
    """The data port's messages for ``scan``: its HDR message, then one per frame."""
    from rsciio_mib_plugin.format.mpx import mpx_message

    frame = 384 + 2 * 256 * 256
    body = scan.read_bytes()
    return [mpx_message(scan.with_suffix(".hdr").read_bytes())] + [
        mpx_message(body[i : i + frame]) for i in range(0, len(body), frame)
    ]


def test_a_stalled_stream_still_writes_its_complete_frames(scan, tmp_path, record_path):
    """The stream stops inside frame 5 and stays open: frames 0-4 reach the file while record waits."""
    frame = 384 + 2 * 256 * 256
    messages = _messages(scan)
    stalled = b"".join(messages[:6]) + messages[6][:1000]
    release = threading.Event()

    def script(client):
        client.sendall(stalled)
        release.wait(60)

    out, outcome = tmp_path / "rec.mib", []

    def recording():
        try:
            outcome.append(record(out, transfer=record_path, data_port=port, timeout=60))
        except Exception as err:  # noqa: BLE001 - shown by the assertion below
            outcome.append(err)

    with pytest.warns(MIBWarning, match="closed the connection after 5 frames of 8 expected inside frame 5"):
        with scripted_server(script) as port:
            thread = threading.Thread(target=recording)
            thread.start()
            for _ in range(400):  # up to 20 s
                if out.exists() and out.stat().st_size >= 5 * frame:
                    break
                time.sleep(0.05)
            size_while_stalled = out.stat().st_size if out.exists() else 0
            release.set()
            thread.join(60)
    assert size_while_stalled >= 5 * frame, size_while_stalled
    assert outcome[0]["frames"] == 5 and not outcome[0]["complete"]
    assert out.stat().st_size == 5 * frame


def test_sigterm_ends_a_stalled_recording_with_whole_frames_only(scan, tmp_path):
    """SIGTERM (a scheduler, kill) while the stream stalls: the file is cut to its whole frames and
    the blocks reserved for the 400 announced frames are given back, as after Ctrl-C."""
    import subprocess
    import sys

    frame = 384 + 2 * 256 * 256
    messages = _messages(scan)
    stalled = b"".join(messages[:6]) + messages[6][:1000]
    out = tmp_path / "rec.mib"
    release = threading.Event()

    def script(client):
        client.sendall(stalled)
        release.wait(60)

    with scripted_server(script) as port:
        argv = ["-m", "rsciio_mib_plugin", "record", "-o", str(out), "--data-port", str(port)]
        proc = subprocess.Popen([sys.executable, *argv, "--timeout", "60", "--frames", "400"], stderr=subprocess.PIPE)
        try:
            for _ in range(600):  # up to 30 s, a cold start included
                if out.exists() and out.stat().st_size >= 5 * frame:
                    break
                time.sleep(0.05)
            err = sigterm(proc)[1].decode()
        finally:
            release.set()
    assert proc.returncode == 130 and "interrupted" in err, err
    assert out.stat().st_size == 5 * frame
    assert out.stat().st_blocks * 512 < 5 * frame + (1 << 20)  # not the 52 MB reserved
    np.testing.assert_array_equal(decoded(out), decoded(scan)[:5])


def _dripping(reply: bytes, pause: float):
    def script(client):
        client.recv(4096)
        for byte in reply:
            client.sendall(bytes([byte]))
            time.sleep(pause)

    return script


def test_control_timeouts_are_deadlines(tmp_path):
    """A reply dripped a byte every 0.4 s took 8.4 s at timeout=1; a slow 'busy' kept record(start=True,
    timeout=0.5) retrying for 4.5 s. The timeout bounds the whole reply and all the retries."""
    from rsciio_mib_plugin.format.mpx import mpx_message

    reply = mpx_message(b"GET,COUNTERDEPTH,12,0")
    with scripted_server(_dripping(reply, 0.4)) as port:
        began = time.monotonic()
        with MerlinControl(port=port, timeout=1) as merlin, pytest.raises(TimeoutError, match="no reply"):
            merlin.get("COUNTERDEPTH")
        assert time.monotonic() - began < 4  # a deadline of 1 s, not 1 s per byte (8 s)

    def busy(client):
        for _ in range(100):
            request = client.recv(4096)
            if not request:
                return
            time.sleep(0.4)
            client.sendall(mpx_message(request[15:] + b",1"))  # the request echoed, status 1: busy

    data_port = socket.create_server(("127.0.0.1", 0))  # accepts; never sends
    with data_port, scripted_server(busy) as control:
        began = time.monotonic()
        with pytest.raises(MerlinCommandError, match=r"status 1 \(busy\), still after 0\.5 s"):
            record(
                tmp_path / "rec.mib",
                data_port=data_port.getsockname()[1],
                control_port=control,
                start=True,
                frames=4,
                timeout=0.5,
            )
        assert time.monotonic() - began < 3  # within about 0.5 s, not 4.5 s of retries
    assert not (tmp_path / "rec.mib").exists()


def test_record_checks_its_folder_before_starting_the_acquisition(tmp_path, capsys):
    """A typo in the output folder would expose the sample and record nothing: nothing is started."""
    requests = []
    with scripted_server(lambda client: requests.append(client.recv(4096))) as control:
        listener = socket.create_server(("127.0.0.1", 0))
        with listener:
            data = listener.getsockname()[1]
            with pytest.raises(FileNotFoundError, match=r"rec\.mib: no such folder .*tpyo"):
                record(tmp_path / "tpyo" / "rec.mib", data_port=data, control_port=control, start=True, frames=4)
            argv = ["record", "-o", str(tmp_path / "tpyo" / "rec.mib"), "--data-port", str(data)]
            assert main([*argv, "--control-port", str(control), "--start"]) == 1
            assert "no such folder" in capsys.readouterr().err
            with pytest.raises(IsADirectoryError, match="is a folder"):
                record(tmp_path, data_port=data, control_port=control, start=True)
    assert requests == []  # the control port was never even connected to
    assert sorted(os.listdir(tmp_path)) == []


@pytest.mark.parametrize("how", ["rewritten", "replaced", "new hdr", "removed"])
def test_follow_detects_a_file_rewritten_or_replaced(tmp_path, how):
    """Between two looks the followed file is cut and rewritten by a new acquisition (or another file
    is renamed over it, or a new acquisition's .hdr appears): its frames are not the old one's."""
    rng = np.random.default_rng(8)
    old = rng.integers(0, 4096, (3, 256, 256), dtype=np.uint16)
    new = rng.integers(0, 4096, (8, 256, 256), dtype=np.uint16)
    t0 = np.datetime64("2026-12-05T10:00:00", "ns")
    steps = np.arange(8) * np.timedelta64(1, "ms")
    path = write_mib(tmp_path / "live.mib", old, hdr={"Frames in Acquisition": 0}, timestamps=t0 + steps[:3])
    hdr = path.with_suffix(".hdr").read_bytes()
    later = t0 + np.timedelta64(60, "s") + steps
    again = write_mib(tmp_path / "next.mib", new, hdr={"Frames in Acquisition": 0}, timestamps=later)
    blocks = follow(path, timeout=5, block_frames=3, poll=0.01)
    first, block = next(blocks)
    np.testing.assert_array_equal(block, decoded(path))
    if how == "rewritten":  # cut to nothing and rewritten in place, grown past the frames seen
        with open(path, "r+b") as f:
            f.truncate(0)
            f.write(again.read_bytes())
        message = "frame 0's header changed after 3 frames were handed over"
    elif how == "replaced":
        os.replace(again, path)
        message = "the file was replaced after 3 frames"
    elif how == "new hdr":
        path.with_suffix(".hdr").write_bytes(hdr[:-8] + b"changed!")  # the new acquisition's
        message = r"live\.hdr: the \.hdr changed after 3 frames"
    else:
        path.unlink()
        message = "the file was removed after 3 frames"
    with pytest.raises(MIBFormatError, match=message):
        next(blocks)


HUGE_SCAN_WATCH = """
import resource, sys
import numpy as np
from rsciio_mib_plugin import write_mib
write_mib("big.mib", np.ones((8, 256, 256), np.uint16), hdr={"ScanX": 60000, "ScanY": 60000, "Frames in Acquisition": 8})
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # the 60000 x 60000 scan would need 26.8 GiB
from rsciio_mib_plugin.cli import main
sys.exit(main(["watch", "big.mib", "--timeout", "1", "--interval", "0"]))
"""


def test_watch_checks_a_huge_hdr_scan_against_the_frames(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", HUGE_SCAN_WATCH], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "8 frames seen" in done.stdout
    assert "scan shape (60000, 60000) needs 3600000000 frames, the file holds 8" in done.stderr
    assert (tmp_path / "big_live.png").read_bytes()[:4] == b"\x89PNG"


def test_serve_survives_hostile_clients(scan):
    """`SET,NUMFRAMESTOACQUIRE,²` killed the control thread; every connection left a thread and a socket
    behind; STOPACQUISITION could not end a send to a client that stopped reading."""
    from rsciio_mib_plugin.live.simulator import MAX_CONTROL_CLIENTS

    with MerlinSimulator(scan, data_port=0, control_port=0) as sim:
        control, data = sim.ports
        baseline = (len(sim._threads), len(sim._sockets))  # the two listeners and their accept loops
        from rsciio_mib_plugin.format.mpx import mpx_message

        with socket.create_connection(("127.0.0.1", control), timeout=10) as s:
            for request in ("SET,NUMFRAMESTOACQUIRE,²", "SET,NUMFRAMESTOACQUIRE,٣", "SET,NUMFRAMESTOACQUIRE," + "9" * 4000,
                            "SET,NUMFRAMESTOACQUIRE,-1", "SET,NUMFRAMESTOACQUIRE, ", "SET,ACQUISITIONTIME,inf",
                            "SET,ACQUISITIONTIME,nan"):  # fmt: skip
                s.sendall(mpx_message(request.encode("utf-8")))
                reply = s.recv(8192)
                assert reply.endswith(b",3"), (request, reply)  # out of range; the connection still answers
            s.sendall(mpx_message(b"GET,NUMFRAMESTOACQUIRE"))
            assert s.recv(8192).endswith(b"GET,NUMFRAMESTOACQUIRE,8,0")
        with MerlinControl(port=control, timeout=10) as merlin, pytest.raises(ValueError, match="not ASCII"):
            merlin.set("NUMFRAMESTOACQUIRE", "²")
        for _ in range(40):  # connections opened and closed, some mid-request
            with socket.create_connection(("127.0.0.1", control), timeout=10) as s:
                s.sendall(b"MPX,0000000")
            socket.create_connection(("127.0.0.1", data), timeout=10).close()
        # what is left: the listeners, their accept loops and the latest data connection (kept until replaced)
        left = lambda: (len(sim._threads), len(sim._sockets)) == (baseline[0], baseline[1] + 1)  # noqa: E731
        assert until(left), (sim._threads, sim._sockets)
        held = [socket.create_connection(("127.0.0.1", control), timeout=10) for _ in range(MAX_CONTROL_CLIENTS + 4)]
        try:
            assert until(lambda: len(sim._threads) == baseline[0] + MAX_CONTROL_CLIENTS)
            assert held[-1].recv(1) == b""  # one too many: closed by the simulator
        finally:
            for s in held:
                s.close()
        # A client that connects to the data port and never reads: a continuous acquisition fills the
        # socket buffers; STOPACQUISITION still ends it, and the detector takes the next one.
        sleeper = socket.create_connection(("127.0.0.1", data), timeout=10)
        try:
            with MerlinControl(port=control, timeout=10) as merlin:
                merlin.set("NUMFRAMESTOACQUIRE", 0)
                merlin.cmd("STARTACQUISITION")
                time.sleep(1)  # long enough to fill every buffer between us
                assert merlin.get("DETECTORSTATUS") == "1"
                merlin.cmd("STOPACQUISITION")
                assert until(lambda: merlin.get("DETECTORSTATUS") == "0")
                assert sim.acquisitions == 1
        finally:
            sleeper.close()
        merlin_data = list(stream(data_port=data, control_port=control, start=True, frames=8, timeout=10))
    assert sum(len(b) for _, b in merlin_data) == 8


def test_control_port_answers_any_request_text(scan):
    """Whatever text arrives (any characters, any lengths), the reply ends in a status code."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from rsciio_mib_plugin.live.control_port import SETTABLE

    sim = MerlinSimulator(scan, data_port=0, control_port=0)  # not started: answers only
    names = st.sampled_from([*SETTABLE, "DETECTORSTATUS", "STARTACQUISITION", "NOSUCH", ""])

    @settings(max_examples=500, deadline=None)
    @given(st.sampled_from(["GET", "SET", "CMD", "", "set"]), names, st.text(max_size=40))
    def check(kind, name, value):
        if kind == "CMD" and name == "STARTACQUISITION":
            return  # would start sending; covered on real ports above
        reply = sim.answer(f"{kind},{name},{value}")
        assert reply.rsplit(",", 1)[1] in ("0", "1", "2", "3"), reply

    check()


def test_record_reserves_at_most_half_the_free_space(tmp_path, monkeypatch):
    """An HDR announcing 10**12 frames made record reserve the whole disk while it ran."""
    import os

    from rsciio_mib_plugin.live import recorder

    class Free:
        f_bavail, f_frsize = 4096, 16384  # 64 MiB free

    monkeypatch.setattr(os, "fstatvfs", lambda fd: Free)
    fd = os.open(tmp_path / "r.mib", os.O_CREAT | os.O_WRONLY)
    try:
        recorder._reserve(fd, 256 << 20)  # more than the 64 MiB "free"
        assert 0 < os.fstat(fd).st_blocks * 512 <= 32 << 20
        assert os.fstat(fd).st_size == 0
    finally:
        os.close(fd)
