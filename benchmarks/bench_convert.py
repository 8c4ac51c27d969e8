"""Speed, memory and compression of ``rsciio-mib convert``, and the lazy sum, for issue 14.

Plain script, not a test. Writes a 128x128 scan of 256x256 12-bit frames with
realistic, sparse counts (a direct-beam disc that moves, a weak background,
Poisson noise: 2.15 GB), then runs every case in its own process as
``bench_read.py`` does (second of two runs timed, file in the page cache,
peak RSS), all cases once per round over ``--rounds`` interleaved rounds, and
prints the medians and the ratios the issue sets targets for: convert against
the eager load and against HyperSpy's own lazy save, one pattern read back,
and the lazy sum through ``file_reader`` against LiberTEM's ``SumUDF``.

    python benchmarks/bench_convert.py [--rounds 5] [--scan 128] [--dir /tmp/rsciio_mib_bench]

It first times ``rsciio-mib convert`` of the demo scan as a user runs it (wall time of the
process, start-up included; ``--command-line-only`` stops there).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_read import CASES, machine, run_case  # noqa: E402

CONVERT_CASES = {
    "ours load_mib_data eager": CASES["ours load_mib_data eager"],
    "ours convert zspy (lz4, default)": """
        import shutil, tempfile
        from rsciio_mib_plugin import convert
        folder = tempfile.mkdtemp(dir=os.path.dirname(PATH))
        convert(PATH, folder)
        shutil.rmtree(folder)
    """,
    "ours convert hspy (lz4)": """
        import shutil, tempfile
        from rsciio_mib_plugin import convert
        folder = tempfile.mkdtemp(dir=os.path.dirname(PATH))
        convert(PATH, folder, format="hspy")
        shutil.rmtree(folder)
    """,
    "hs.load(lazy=True).save(zspy)": """
        import shutil, tempfile
        import hyperspy.api as hs
        import rsciio_mib_plugin
        folder = tempfile.mkdtemp(dir=os.path.dirname(PATH))
        s = hs.load(PATH, file_format=rsciio_mib_plugin, lazy=True)
        s.save(folder + "/out.zspy", show_progressbar=False)
        shutil.rmtree(folder)
    """,
    "read one pattern back (zspy, lazy hs.load)": """
        import hyperspy.api as hs
        global SIGNAL
        if "SIGNAL" not in globals():  # opened in the untimed first run
            SIGNAL = hs.load(os.environ["ARCHIVE"], lazy=True)
        touch(SIGNAL.inav[37, 91].data.compute())
    """,
    "ours lazy sum over scan": CASES["ours lazy sum over scan"],
    "LiberTEM SumUDF (inline)": CASES["LiberTEM SumUDF (inline)"],
}


def make_sparse(folder: Path, scan: int) -> Path:
    """scan x scan frames of a disc of 40 counts on a background of 0.05: very compressible."""
    y, x = np.ogrid[:256, :256]

    def mean(j, i):
        cy, cx = 128 + 8 * np.sin(2 * np.pi * j / scan), 128 + 8 * np.cos(2 * np.pi * i / scan)
        return ((y - cy) ** 2 + (x - cx) ** 2 <= 20**2) * 40.0 + 0.05

    return _write_lines(folder / f"u16_sparse_{scan}x{scan}.mib", scan, mean)


def make_demo_like(folder: Path, scan: int) -> Path:
    """scan x scan frames of the demo scan's content (``rsciio-mib demo``): direct beam, Bragg
    discs in a grain, a diffuse background of 0.5-30 counts, Poisson noise."""
    from rsciio_mib_plugin.cli.demo import demo_frame_mean

    return _write_lines(
        folder / f"u16_demo_{scan}x{scan}.mib", scan, lambda j, i: demo_frame_mean(j, i, (scan, scan), (256, 256))
    )


def _write_lines(path: Path, scan: int, mean) -> Path:
    """A 12-bit scan x scan scan of 256x256 frames, Poisson counts of ``mean(j, i)``, written a
    line at a time (a whole scan would not fit in memory)."""
    from rsciio_mib_plugin import write_mib

    if path.exists():
        return path
    rng, folder = np.random.default_rng(1), path.parent
    with open(path, "wb") as out:
        for j in range(scan):
            line = np.empty((1, scan, 256, 256), np.uint16)
            for i in range(scan):
                line[0, i] = np.minimum(rng.poisson(mean(j, i)), 4095)
            part = write_mib(
                folder / "line.mib",
                line,
                counter_depth=12,
                first_number=j * scan + 1,
                hdr={"ScanY": scan, "Frames in Acquisition": scan * scan},
            )
            out.write(part.read_bytes())
    (folder / "line.hdr").replace(path.with_suffix(".hdr"))
    (folder / "line.mib").unlink()
    return path


def command_line(folder: Path, rounds: int) -> None:
    """``rsciio-mib convert`` of the demo scan as a user runs it: wall time of the whole process,
    start-up and imports included (the README's benchmark line)."""
    import subprocess
    import time

    from rsciio_mib_plugin.cli.demo import write_demo

    (folder / "demo").mkdir(exist_ok=True)
    demo = write_demo(folder / "demo")
    size = demo.stat().st_size
    seconds = []
    for _ in range(rounds + 1):  # the first run warms the page cache and the import caches
        out = Path(tempfile.mkdtemp(dir=folder))
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rsciio_mib_plugin", "convert", str(demo), "-o", str(out)], check=True,
                       capture_output=True)  # fmt: skip
        seconds.append(time.perf_counter() - began)
        shutil.rmtree(out)
    runs = seconds[1:]
    print(
        f"rsciio-mib convert of the demo scan ({size / 1e6:.1f} MB), wall time with start-up: median "
        f"{statistics.median(runs):.2f} s, range {min(runs):.2f}-{max(runs):.2f} s over {rounds} runs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scan", type=int, default=128)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/rsciio_mib_bench"))
    parser.add_argument(
        "--command-line-only", action="store_true", help="only the demo scan through rsciio-mib convert"
    )
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    command_line(args.dir, args.rounds)
    if args.command_line_only:
        return
    path = make_sparse(args.dir, args.scan)
    nav = (args.scan, args.scan)
    print(machine())
    from rsciio_mib_plugin import convert

    archive_dir = Path(tempfile.mkdtemp(dir=args.dir))
    ratios = {}
    for compression in ("lz4", "zstd", "gzip"):
        (report,) = convert(path, archive_dir / compression, compression=compression)
        ratios[compression] = report["ratio"]
    CASES.update(CONVERT_CASES)
    os.environ["ARCHIVE"] = str(archive_dir / "lz4" / f"{path.stem}.zspy")
    np.fromfile(path, dtype=np.uint8).sum()
    runs = {name: [] for name in CONVERT_CASES}
    for _ in range(args.rounds):
        for name in CONVERT_CASES:
            row = run_case(name, path, nav)
            if row:
                runs[name].append(row)
    shutil.rmtree(archive_dir)
    rows = [
        {
            "case": name,
            "seconds": statistics.median(r["seconds"] for r in found),
            "peak_rss": max(r["peak_rss"] for r in found),
            "range": (min(r["seconds"] for r in found), max(r["seconds"] for r in found)),
        }
        for name, found in runs.items()
        if found
    ]
    print(f"\n{path.name}: file {path.stat().st_size / 1e9:.2f} GB; medians of {args.rounds} interleaved rounds")
    print("| case | s (median) | s (range) | peak RSS (GB) |")
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['seconds']:.3f} | {r['range'][0]:.3f}–{r['range'][1]:.3f} | {r['peak_rss'] / 1e9:.2f} |"
        )
    print("\ncompression ratios (array bytes / archive bytes): " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    by = {r["case"]: r["seconds"] for r in rows}

    def ratio(a: str, b: str) -> str:
        return f"{by[a] / by[b]:.2f}x" if a in by and b in by else "n/a"

    print(
        f"convert / eager load: {ratio('ours convert zspy (lz4, default)', 'ours load_mib_data eager')} (target <= 3)"
    )
    print(
        f"HyperSpy's save / convert: {ratio('hs.load(lazy=True).save(zspy)', 'ours convert zspy (lz4, default)')} (target >= 3)"
    )
    pattern = by.get("read one pattern back (zspy, lazy hs.load)")
    if pattern:
        print(f"one pattern read back: {pattern * 1e3:.1f} ms (target <= 20)")
    print(f"lazy sum / LiberTEM SumUDF: {ratio('ours lazy sum over scan', 'LiberTEM SumUDF (inline)')} (target <= 0.8)")


if __name__ == "__main__":
    main()
