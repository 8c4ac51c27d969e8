"""Remote reads from a loopback S3 server (moto) against fetching every byte with fsspec.

Plain script, not a test. Uploads a 0.5 GB scan of 256x256 U16 frames
(64x64 frames, its .hdr states the scan) to moto's S3 server on 127.0.0.1,
then, in the same run, times:

- fetch: every byte of the object with ``fs.cat_ranges`` in 16 MB ranges,
  8 at a time (the concurrency our eager reads use);
- open: ``MIBProperties.from_path`` (and the number of requests it makes);
- eager: ``load_mib_data(url, return_mmap=False)``;
- lazy sum: ``load_mib_data(url, lazy=True, return_mmap=False).sum(axis=0).compute()``.

    python benchmarks/bench_remote.py [--scan 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SERVER = Path(__file__).resolve().parents[1] / "tests" / "servers" / "s3.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scan", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import boto3
    import fsspec

    from rsciio_mib_plugin import MIBProperties, load_mib_data, write_mib

    folder = Path(tempfile.mkdtemp(prefix="rsciio_mib_remote_"))
    rng = np.random.default_rng(0)
    local = write_mib(
        folder / "scan.mib",
        rng.integers(0, 4096, (args.scan, args.scan, 256, 256), dtype=np.uint16),
        hdr={"ScanX": args.scan, "ScanY": args.scan},
    )
    log = open(folder / "server.log", "w")
    server = subprocess.Popen([sys.executable, str(SERVER)], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            lines = (folder / "server.log").read_text().splitlines()
            if lines and lines[0].isdigit():
                break
            time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{lines[0]}"
        client = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1"
        )
        client.create_bucket(Bucket="scans")
        for path in (local, local.with_suffix(".hdr")):
            client.upload_file(str(path), "scans", path.name)
        options = {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        url = "s3://scans/scan.mib"
        size = local.stat().st_size
        fs = fsspec.filesystem("s3", **options)

        def fetch():
            starts = list(range(0, size, 16 << 20))
            ends = [min(s + (16 << 20), size) for s in starts]
            parts = fs.cat_ranges([url] * len(starts), starts, ends, batch_size=8)
            assert sum(map(len, parts)) == size

        def open_file():
            before = len((folder / "server.log").read_text().splitlines())
            MIBProperties.from_path(url, storage_options=options)
            return len((folder / "server.log").read_text().splitlines()) - before

        cases = {
            "fetch every byte (cat_ranges, 16 MB x 8)": fetch,
            "eager load_mib_data": lambda: load_mib_data(url, return_mmap=False, storage_options=options),
            "lazy sum": lambda: (
                load_mib_data(url, lazy=True, return_mmap=False, storage_options=options).sum(axis=0).compute()
            ),
        }
        times = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, case in cases.items():
                began = time.perf_counter()
                case()
                times[name].append(time.perf_counter() - began)
        requests = open_file()
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    print(f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, {size / 1e9:.2f} GB object")
    print("| case | seconds median (best) | x fetch (median) |\n|---|---|---|")
    fetch_median = sorted(times["fetch every byte (cat_ranges, 16 MB x 8)"])[args.rounds // 2]
    for name, values in times.items():
        median = sorted(values)[args.rounds // 2]
        print(f"| {name} | {median:.2f} ({min(values):.2f}) | {median / fetch_median:.2f} |")
    print(f"opening (shape from the .hdr): {requests} requests (moto logs one line per request)")


if __name__ == "__main__":
    main()
