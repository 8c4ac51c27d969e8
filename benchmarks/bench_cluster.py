"""Conversion on a dask.distributed cluster and the watched folder's latency (issue 27).

Plain script, not a test.

- cluster: the 2.15 GB 128x128 scan of ``bench_read.py`` converted in-process
  and on a local cluster of 2 worker processes (1 thread each), interleaved over
  ``--rounds`` rounds (medians); the task stream gives each block's time on a
  worker, from which the scaling with workers is estimated;
- watcher: the demo scan (101 MB, its ``.hdr`` announcing the frame count)
  written into a watched folder in 16 pieces while ``rsciio-mib convert --watch``
  runs as its own process; the latency is from the last byte written to the
  archive in place, against the conversion time the watcher reports.

    python benchmarks/bench_cluster.py [--rounds 3] [--dir /tmp/rsciio_mib_bench]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_read import machine, make_files  # noqa: E402


def cluster_case(path: Path, folder: Path, rounds: int) -> None:
    from distributed import Client, LocalCluster, get_task_stream

    from rsciio_mib_plugin import convert

    times = {"in-process (2 threads)": [], "local cluster (2 workers x 1 thread)": []}
    blocks = []
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, local_directory=str(folder)
        ) as cluster,
        Client(cluster) as client,
    ):
        for _ in range(rounds + 1):  # the first round warms the page cache and the workers
            for name in times:
                out = Path(tempfile.mkdtemp(dir=folder))
                began = time.perf_counter()
                if name.startswith("in-process"):
                    convert(path, out)
                else:
                    with get_task_stream(client) as tasks:
                        convert(path, out, scheduler=client)
                    blocks = [t for t in tasks.data if "block_task" in t["key"]]
                times[name].append(time.perf_counter() - began)
                shutil.rmtree(out)
    print(f"\n{path.name} ({path.stat().st_size / 1e9:.2f} GB) to zspy, {rounds} interleaved rounds")
    print("| case | s (median) | s (range) |\n|---|---|---|")
    for name, found in times.items():
        found = found[1:]
        print(f"| {name} | {statistics.median(found):.2f} | {min(found):.2f}-{max(found):.2f} |")
    local, on_cluster = (statistics.median(v[1:]) for v in times.values())
    print(f"cluster / in-process: {on_cluster / local:.2f}x (target <= 1.3)")
    spans = [sum(s["stop"] - s["start"] for s in t["startstops"] if s["action"] == "compute") for t in blocks]
    if spans:
        total = sum(spans)
        print(
            f"{len(spans)} blocks, {statistics.median(spans):.3f} s each on a worker (median), {total:.1f} s of "
            f"worker time in all: with W workers on as many cores the pass takes about {total:.1f}/W s "
            "until the disk or the network is the limit"
        )


def watcher_case(folder: Path) -> None:
    from rsciio_mib_plugin.cli.demo import write_demo

    source_dir = folder / "source"
    source_dir.mkdir()
    demo = write_demo(source_dir)
    watched, out = folder / "watched", folder / "out"
    watched.mkdir()
    log = folder / "watch.log"
    settle = 1.0
    with open(log, "w") as sink:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "rsciio_mib_plugin", "convert", "--watch", str(watched), "-o", str(out),
             "--settle", str(settle)],
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        time.sleep(3)  # the watcher started
        (watched / "demo_scan.hdr").write_bytes(demo.with_suffix(".hdr").read_bytes())
        raw = demo.read_bytes()
        step = -(-len(raw) // 16)
        with open(watched / "demo_scan.mib", "wb") as f:
            for i in range(0, len(raw), step):
                f.write(raw[i : i + step])
                f.flush()
                time.sleep(0.1)
        last_byte = time.monotonic()
        target = out / "demo_scan.zspy"
        for _ in range(1200):
            if target.exists():
                break
            time.sleep(0.05)
        latency = time.monotonic() - last_byte
    finally:
        watcher.terminate()
        watcher.wait(30)
    line = next((t for t in log.read_text().splitlines() if t.startswith("[")), "")
    print(
        f"\nwatcher: archive in place {latency:.2f} s after the last byte (settle {settle:g} s, not needed: the .hdr's"
    )
    print(f"frame count was reached); the watcher's report: {line.split(': ', 1)[-1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/rsciio_mib_bench"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    print(machine())
    processed, _ = make_files(args.dir, 128)
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        cluster_case(processed, Path(scratch), args.rounds)
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        watcher_case(Path(scratch))


if __name__ == "__main__":
    main()
