"""What navigators cost and save (issue 26).

Plain script, not a test. Two measurements, each case in its own process
(``bench_read.run_case``: a first run, then the eager loads timed as the fastest of 3 more, the
others as one more; files in the page cache),
interleaved over ``--rounds`` rounds, medians and ranges printed:

- eager: ``file_reader`` of the 2.15 GB 128x128 scan of ``bench_read.py`` with
  the default navigator (frame totals counted while reading) and with
  ``navigator=None``; the ratio is the price of the navigator. Twice: in a
  plain process (numpy counts after converting) and in one where numba runs
  already, as after ``import pyxem`` (one compiled pass converts and counts);
- browsing: two ``--scan`` x ``--scan`` scans (256: 65,536 frames, 8.6 GB), one
  of the demo scan's content (``rsciio-mib demo``: Poisson noise on every pixel)
  and one sparse (a disc on a background of 0.05 counts, 16x compressible),
  converted to zspy once, then ``hs.load(lazy=True)`` and ``s.plot()`` (Agg)
  with the stored navigator, against the same with ``s.navigator = None``
  (HyperSpy summing the whole archive for its own); the data chunks the first
  plot reads are counted.

    python benchmarks/bench_navigator.py [--rounds 5] [--scan 256] [--dir /tmp/rsciio_mib_bench]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_convert import make_demo_like, make_sparse  # noqa: E402
from bench_read import CASES, machine, make_files, run_case  # noqa: E402

EAGER = {
    "eager file_reader, navigator total (default)": """
        from rsciio_mib_plugin import file_reader
        (d,) = file_reader(PATH)
        touch(d["data"])
    """,
    "eager file_reader, navigator=None": """
        from rsciio_mib_plugin import file_reader
        (d,) = file_reader(PATH, navigator=None)
        touch(d["data"])
    """,
}
#: The same where numba runs already (pyxem, LiberTEM start it): the compiled pass counts.
NUMBA = {
    name.replace("eager", "eager, numba running"): code.replace("from", "import numba\n        from", 1)
    for name, code in EAGER.items()
}

BROWSE = {
    "lazy archive: hs.load + plot, stored navigator": """
        import matplotlib; matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import hyperspy.api as hs
        s = hs.load(PATH, lazy=True)
        s.plot()
        plt.close("all")
    """,
    "lazy archive: hs.load + plot, navigator removed": """
        import matplotlib; matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import hyperspy.api as hs
        s = hs.load(PATH, lazy=True)
        s.navigator = None
        s.plot()
        plt.close("all")
    """,
}

COUNT_READS = """
import re, sys, zarr, matplotlib
matplotlib.use("Agg")
import hyperspy.api as hs
reads = []
original = zarr.storage.DirectoryStore.__getitem__
def counting(self, key):
    if re.fullmatch(r"Experiments/[^/]+/data/[0-9.]+", key):
        reads.append(key)
    return original(self, key)
zarr.storage.DirectoryStore.__getitem__ = counting
s = hs.load(sys.argv[1], lazy=True)
s.plot()
print(len(reads), s.data.npartitions)
"""


def measure(cases: dict, path: Path, nav: tuple[int, int], rounds: int, repeats: int = 1) -> dict:
    CASES.update(cases)
    runs = {name: [] for name in cases}
    for _ in range(rounds):
        for name in cases:
            row = run_case(name, path, nav, repeats)
            if row:
                runs[name].append(row["seconds"])
    return {name: found for name, found in runs.items() if found}


def show(runs: dict) -> None:
    for name, found in runs.items():
        print(f"| {name} | {statistics.median(found):.3f} | {min(found):.3f}-{max(found):.3f} |")


def main() -> None:
    import subprocess

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scan", type=int, default=256)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/rsciio_mib_bench"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    print(machine())

    processed, _ = make_files(args.dir, 128)
    eager = measure(EAGER | NUMBA, processed, (128, 128), args.rounds, repeats=3)
    print(f"\n{processed.name} ({processed.stat().st_size / 1e9:.2f} GB), {args.rounds} interleaved rounds")
    print("| case | s (median) | s (range) |\n|---|---|---|")
    show(eager)
    times = [statistics.median(v) for v in eager.values()]
    for label, (with_nav, without) in (("plain process", times[:2]), ("numba running", times[2:])):
        print(f"navigator / none, {label}: {with_nav / without:.3f}x (target <= 1.05)")

    from rsciio_mib_plugin import convert

    for make in (make_demo_like, make_sparse):
        scan = make(args.dir, args.scan)
        archive = args.dir / "navigator" / f"{scan.stem}.zspy"
        if not archive.exists():
            convert(scan, archive.parent)
        browse = measure(BROWSE, archive, (args.scan, args.scan), args.rounds)
        size = sum(f.stat().st_size for f in archive.rglob("*") if f.is_file())
        print(
            f"\n{archive.name}: {args.scan * args.scan} frames, {size / 1e9:.2f} GB, {args.rounds} interleaved rounds"
        )
        print("| case | s (median) | s (range) |\n|---|---|---|")
        show(browse)
        stored, removed = (statistics.median(v) for v in browse.values())
        print(f"HyperSpy's own navigator / stored: {removed / stored:.1f}x (target >= 20)")
        reads = subprocess.run([sys.executable, "-c", COUNT_READS, str(archive)], capture_output=True, text=True)
        print(f"data chunks read by the first plot, of all: {reads.stdout.strip() or reads.stderr[-300:]}")


if __name__ == "__main__":
    main()
