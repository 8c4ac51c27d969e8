"""Transforms while reading against the plain eager load, interleaved rounds (issue 17).

Plain script, not a test. Runs ``bench_read.py``'s cases, each in its own
process (second run timed, page cache warm), alternating plain and geometry
loads over ``--rounds`` rounds, and prints the medians and every round's
ratio: ``quad_gap=3`` on the 1-bit RAW quad scan against its plain load, and
``bin_signal=2`` on the 2.15 GB U16 scan against its plain load (with the
peak-memory ratio).

    python benchmarks/bench_transforms.py [--rounds 6] [--scan 128] [--dir /tmp/rsciio_mib_bench]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_read import make_files, run_case  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--scan", type=int, default=128)
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "rsciio_mib_bench"))
    args = parser.parse_args()
    u16, quad = make_files(Path(args.dir), args.scan)
    nav = (args.scan, args.scan)
    pairs = {
        "quad_gap=3 (1-bit RAW quad)": (quad, "ours load_mib_data eager", "ours eager quad_gap=3"),
        "bin_signal=2 (U16)": (u16, "ours load_mib_data eager", "ours eager bin_signal=2"),
    }
    results = {name: [] for name in pairs}
    for _ in range(args.rounds):
        for name, (path, plain, changed) in pairs.items():
            a, b = run_case(plain, path, nav), run_case(changed, path, nav)
            results[name].append((a["seconds"], b["seconds"], b["peak_rss"] / a["peak_rss"]))
    print(f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, {args.rounds} rounds")
    print("| case | plain s (median) | with it s (median) | ratio of medians | ratio per round | memory ratio |")
    print("|---|---|---|---|---|---|")
    for name, rows in results.items():
        plain = statistics.median(r[0] for r in rows)
        changed = statistics.median(r[1] for r in rows)
        per_round = ", ".join(f"{r[1] / r[0]:.2f}" for r in sorted(rows, key=lambda r: r[1] / r[0]))
        memory = max(r[2] for r in rows)
        print(f"| {name} | {plain:.3f} | {changed:.3f} | {changed / plain:.2f} | {per_round} | {memory:.2f} |")


if __name__ == "__main__":
    main()
