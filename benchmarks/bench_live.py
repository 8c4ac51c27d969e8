"""Throughput and memory of live ``record`` and ``stream`` against a bare TCP transfer.

Plain script, not a test. Serves the 2.15 GB 128x128 U16 scan of
``bench_read.py`` from the page cache with ``rsciio-mib serve`` on loopback
and, in the same run, measures:

- write: the same number of bytes written from memory to a new file (the
  file system's ceiling for ``record``, no network);
- bare: one ``sendfile`` of the same file to a client doing ``recv_into`` into
  a 16 MB buffer (the link's limit, nothing parsed or written);
- record: ``rsciio_mib_plugin.live.record`` writing a new ``.mib`` and ``.hdr``;
- stream: ``rsciio_mib_plugin.live.stream`` decoding every block;
- stream x4: the same file served four times in one acquisition
  (``--repeat 4``, 8.6 GB) to show memory does not grow with the acquisition.

Each client runs in its own process (peak RSS from ``getrusage``); the cases
are interleaved over ``--rounds`` rounds and the median and best are shown.

    python benchmarks/bench_live.py [--scan 128] [--rounds 3] [--dir /tmp/rsciio_mib_bench]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_read import make_files  # noqa: E402

BARE_SERVER = """
import socket, sys
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
client, _ = listener.accept()
with open(sys.argv[1], "rb") as f:
    client.sendfile(f)
client.close()
"""

CLIENT = """
import os, socket, sys, time
import numpy as np
from rsciio_mib_plugin.live import record, stream  # imported before the clock starts, as bare's numpy
case, port, control, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
began = time.perf_counter()
if case == "write":  # the file system's ceiling: the same number of bytes from memory to a new file
    block, total = np.ones(16 << 20, np.uint8), 0
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    while total < port:
        total += os.write(fd, block[: port - total])
    os.close(fd)
elif case == "bare":
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    buffer = memoryview(np.empty(16 << 20, np.uint8))
    total = 0
    while n := s.recv_into(buffer):
        total += n
elif case == "record":
    r = record(out, data_port=port, control_port=control, start=True, show_progressbar=False)
    total = r["bytes"]
else:
    total = 0
    for first, frames in stream(data_port=port, control_port=control, start=True):
        total += frames.nbytes
seconds = time.perf_counter() - began
# VmHWM: this process's own peak (ru_maxrss would include the parent's at fork)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(total, seconds, peak * 1024)
"""


def serve(path: Path, *options: str):
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rsciio_mib_plugin", "serve", str(path), "--data-port", "0", "--control-port", "0"]
        + list(options),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    for _ in range(600):
        match = re.search(r"control port (\d+), data port (\d+)", Path(log.name).read_text())
        if match:
            return proc, int(match[1]), int(match[2])
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("serve did not start")


def run(case: str, path: Path, folder: Path) -> dict:
    out = folder / "recorded.mib"
    for p in (out, out.with_suffix(".hdr")):
        p.unlink(missing_ok=True)
    if case == "write":
        server, data, control = subprocess.Popen([sys.executable, "-c", "pass"]), path.stat().st_size, 0
    elif case == "bare":
        server = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(path)], stdout=subprocess.PIPE, text=True)
        data, control = int(server.stdout.readline()), 0
    else:
        server, control, data = serve(path, *(["--repeat", "4"] if case == "stream x4" else []))
    try:
        kind = case.split()[0]
        result = subprocess.run(
            [sys.executable, "-c", CLIENT, kind, str(data), str(control), str(out)],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
    finally:
        server.terminate()
        server.wait(30)
    total, seconds, rss = result.stdout.split()
    # Rates are of the file's bytes (the MPX prefixes add 15 per frame, 0.01 %).
    size = path.stat().st_size * (4 if case == "stream x4" else 1)
    return {"bytes": size, "seconds": float(seconds), "rss": int(rss)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scan", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "rsciio_mib_bench"))
    args = parser.parse_args()
    folder = Path(args.dir)
    path, _ = make_files(folder, args.scan)
    with open(path, "rb") as f:  # into the page cache, a piece at a time (the clients' RSS is measured)
        while f.read(64 << 20):
            pass
    cases = ("bare", "write", "record", "stream", "stream x4")
    results = {case: [] for case in cases}
    for _ in range(args.rounds):
        for case in cases:
            results[case].append(run(case, path, folder))
    (folder / "recorded.mib").unlink(missing_ok=True)
    size = path.stat().st_size
    print(f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, {size / 1e9:.2f} GB scan")
    bare = sorted(r["bytes"] / r["seconds"] for r in results["bare"])
    print(
        textwrap.dedent("""
        | case | MB/s median (best) | x bare (median) | peak RSS |
        |---|---|---|---|""").strip()
    )
    for case in cases:
        rates = sorted(r["bytes"] / r["seconds"] for r in results[case])
        median = rates[len(rates) // 2]
        rss = max(r["rss"] for r in results[case])
        print(
            f"| {case} | {median / 1e6:.0f} ({rates[-1] / 1e6:.0f}) | {median / bare[len(bare) // 2]:.2f} "
            f"| {rss / 1e6:.0f} MB |"
        )


if __name__ == "__main__":
    main()
