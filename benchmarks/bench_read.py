"""Speed and memory of reading .mib files, against baselines measured in the same run.

Plain script, not a test. Each case runs in its own Python process so its peak
resident memory (VmHWM) is its own; the file is read once first so every
case starts from the page cache. Prints one table row per case: seconds,
GB/s of file, peak RSS, and the time ratio to ``numpy.fromfile``.

    python benchmarks/bench_read.py                 # 128x128 scan of 256x256 U16 + RAW quad 1-bit
    python benchmarks/bench_read.py --scan 32 --dir /tmp/bench

LiberTEM cases run when ``libertem`` is importable.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

CASES = {
    "numpy.fromfile": """
        data = np.fromfile(PATH, dtype=np.uint8)
        touch(data)
    """,
    "preadv 2 threads": """
        from concurrent.futures import ThreadPoolExecutor
        size = os.path.getsize(PATH)
        buf = np.empty(size, np.uint8)
        fd = os.open(PATH, os.O_RDONLY)
        step = 64 << 20
        def part(a):
            os.preadv(fd, [buf[a:a + step]], a)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(part, range(0, size, step)))
        touch(buf)
    """,
    "ours load_mib_data eager": """
        from rsciio_mib_plugin import load_mib_data
        data = load_mib_data(PATH, return_mmap=False)
        touch(data)
    """,
    "ours eager bin_signal=2": """
        from rsciio_mib_plugin import load_mib_data
        data = load_mib_data(PATH, return_mmap=False, bin_signal=2)
        touch(data)
    """,
    "ours eager quad_gap=3": """
        from rsciio_mib_plugin import load_mib_data
        data = load_mib_data(PATH, return_mmap=False, quad_gap=3)
        touch(data)
    """,
    "ours hs.load eager": """
        import hyperspy.api as hs
        import rsciio_mib_plugin
        s = hs.load(PATH, file_format=rsciio_mib_plugin)
        touch(s.data)
    """,
    "ours lazy sum over scan": """
        from rsciio_mib_plugin import file_reader
        (d,) = file_reader(PATH, lazy=True)  # what hs.load(lazy=True) holds: rows flipped
        result = d["data"].sum(axis=(0, 1), dtype=np.uint64).compute(scheduler="threads", num_workers=2)
        touch(result)
    """,
    "ours load_mib_data lazy sum (file order)": """
        from rsciio_mib_plugin import load_mib_data
        data = load_mib_data(PATH, lazy=True, return_mmap=False)  # frames as stored, rows not reversed
        result = data.sum(axis=0, dtype=np.uint64).compute(scheduler="threads", num_workers=2)
        touch(result)
    """,
    "ours lazy virtual image": """
        from rsciio_mib_plugin import file_reader
        (d,) = file_reader(PATH, lazy=True)
        result = d["data"].sum(axis=(2, 3), dtype=np.uint64).compute(scheduler="threads", num_workers=2)
        touch(result)
    """,
    "ours hs.load lazy -> zspy": """
        import shutil, tempfile
        import hyperspy.api as hs
        import rsciio_mib_plugin
        s = hs.load(PATH, file_format=rsciio_mib_plugin, lazy=True)
        folder = tempfile.mkdtemp()
        s.save(folder + "/out.zspy", show_progressbar=False)
        shutil.rmtree(folder)
    """,
    "built-in lazy sum over scan": """
        from rsciio.quantumdetector import file_reader
        data = file_reader(PATH, lazy=True)[0]["data"]
        result = data.sum(axis=(0, 1), dtype=np.uint64).compute(scheduler="threads", num_workers=2)
        touch(result)
    """,
    "LiberTEM SumUDF (inline)": """
        import libertem.api as lt
        from libertem.udf.sum import SumUDF
        from libertem.io.dataset.base import BufferedBackend
        with lt.Context.make_with("inline") as ctx:
            # LiberTEM's default mmap backend fails on 1-bit RAW; the buffered one works.
            backend = BufferedBackend() if "raw" in PATH else None
            ds = ctx.load("mib", path=PATH, nav_shape=NAV, io_backend=backend)
            result = ctx.run_udf(dataset=ds, udf=SumUDF())["intensity"].data
        touch(result)
    """,
    "built-in hs.load eager": """
        import hyperspy.api as hs
        # last: its 25 GB peak evicts the page cache the other cases rely on
        s = hs.load(PATH, file_format="QuantumDetector")  # hook off: the built-in
        touch(s.data)
    """,
}

RAW_CASES = [
    "numpy.fromfile",
    "ours load_mib_data eager",
    "ours eager quad_gap=3",
    "ours lazy sum over scan",
    "LiberTEM SumUDF (inline)",
]
U16_CASES = [name for name in CASES if name != "ours eager quad_gap=3"]

# Opening a pixel-triggered scan without ScanX/ScanY: the shape comes from the
# frame timestamps, read from the first 16,384 headers only.
OPEN_CASE = """
        from rsciio_mib_plugin import file_reader
        (d,) = file_reader(PATH, lazy=True)
        assert d["data"].shape[:2] == NAV, d["data"].shape
"""

# Each case runs twice in its process and the second run is timed, so imports,
# JIT compilation and first-touch costs are left out for every reader alike.
RUNNER = """
import gc, os, sys, time
import numpy as np
PATH, NAV, REPEATS = sys.argv[1], tuple(int(v) for v in sys.argv[2].split(",")), int(sys.argv[3])
def touch(a):
    np.asarray(a).flat[::4096].sum()  # no copy of a flipped view
def peak_rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM"))
def run():
{body}
run()
times = []
for _ in range(REPEATS):
    gc.collect()  # HyperSpy signals hold reference cycles; free the result before first
    t0 = time.perf_counter()
    run()
    times.append(time.perf_counter() - t0)
print("RESULT", min(times), peak_rss())
"""


def machine() -> str:
    """The line each benchmark starts with: where its figures were taken."""
    return f"{platform.node()}: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def run_case(name: str, path: Path, nav: tuple[int, int], repeats: int = 1) -> dict | None:
    """Time one case in its own process: run once, then the fastest of ``repeats``
    runs (on this VM a run now and then waits seconds for fresh memory from the host)."""
    code = RUNNER.format(body=textwrap.indent(textwrap.dedent(CASES[name]), "    "))
    env = dict(os.environ, RSCIIO_MIB_PLUGIN_AUTOLOAD="0")
    args = [sys.executable, "-c", code, str(path), ",".join(map(str, nav)), str(repeats)]
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    if done.returncode or not lines:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"  {name}: skipped ({reason[:100]})", file=sys.stderr)
        return None
    _, seconds, rss = lines[-1].split()
    return {"case": name, "seconds": float(seconds), "peak_rss": int(rss)}


def make_pixel_trigger_file(folder: Path, side: int = 256) -> Path:
    """side x side frames of 64x256 U08, 1 ms apart with 5 us more at line starts, no ScanX/ScanY."""
    from rsciio_mib_plugin import write_mib

    path = folder / f"pixel_trigger_{side}x{side}.mib"
    if not path.exists():
        periods = np.full(side * side - 1, 1_000_000)
        periods[side - 1 :: side] += 5_000
        times = np.r_[0, np.cumsum(periods)] + 1_700_000_000_000_000_000
        frames = np.zeros((side * side, 64, 256), np.uint8)
        write_mib(path, frames, timestamps=times, hdr={"ScanX": None, "ScanY": None, "Frames per Trigger": 1})
    return path


def make_lost_file(processed: Path, lost=(1000, 5000, 9000)) -> Path:
    """A copy of ``processed`` without a few frames (lost during acquisition), its .hdr beside it."""
    path = processed.with_name(processed.stem + "_lost.mib")
    if not path.exists():
        frame_bytes = 384 + 256 * 256 * 2
        with open(processed, "rb") as src, open(path, "wb") as out:
            for i in range(processed.stat().st_size // frame_bytes):
                chunk = src.read(frame_bytes)
                if i not in lost:
                    out.write(chunk)
        path.with_suffix(".hdr").write_bytes(processed.with_suffix(".hdr").read_bytes())
    return path


def make_files(folder: Path, scan: int) -> tuple[Path, Path]:
    from rsciio_mib_plugin import write_mib

    folder.mkdir(parents=True, exist_ok=True)
    processed, raw = folder / f"u16_{scan}x{scan}.mib", folder / f"raw1_quad_{scan}x{scan}.mib"
    rng = np.random.default_rng(0)
    if not processed.exists():
        frames = rng.integers(0, 4096, size=(scan, scan, 256, 256), dtype=np.uint16)
        write_mib(processed, frames, counter_depth=12)
        del frames
    if not raw.exists():
        # Written one scan line at a time (a whole 128x128 quad scan decoded is 4 GB);
        # the .hdr of the first line is rewritten for the whole scan.
        with open(raw, "wb") as out:
            for _ in range(scan):
                line = (rng.integers(0, 20, size=(1, scan, 512, 512), dtype=np.uint8) == 0).astype(np.uint8)
                part = write_mib(
                    folder / "line.mib",
                    line,
                    counter_depth=1,
                    raw=True,
                    hdr={"ScanY": scan, "Frames in Acquisition": scan * scan},
                )
                out.write(part.read_bytes())
        (folder / "line.hdr").replace(raw.with_suffix(".hdr"))
        (folder / "line.mib").unlink()
    return processed, raw


def table(rows: list[dict], size: int, array_bytes: int) -> str:
    base = {r["case"]: r["seconds"] for r in rows}
    out = [
        "| case | s | GB/s | peak RSS (GB) | RSS / array | × numpy.fromfile | × preadv |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratios = [r["seconds"] / base[k] if k in base else float("nan") for k in ("numpy.fromfile", "preadv 2 threads")]
        out.append(
            f"| {r['case']} | {r['seconds']:.3f} | {size / r['seconds'] / 1e9:.2f} | {r['peak_rss'] / 1e9:.2f} | "
            f"{r['peak_rss'] / array_bytes:.2f} | {ratios[0]:.2f} | {ratios[1]:.2f} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scan", type=int, default=128, help="scan is SCAN x SCAN frames (default 128)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/rsciio_mib_bench"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--skip", action="append", default=[], help="leave out cases whose name contains this")
    args = parser.parse_args()
    processed, raw = make_files(args.dir, args.scan)
    nav = (args.scan, args.scan)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"
    )
    results = {}
    for label, path, names, array_bytes in (
        ("U16 256x256", processed, U16_CASES, args.scan**2 * 256 * 256 * 2),
        ("RAW 1-bit quad", raw, RAW_CASES, args.scan**2 * 512 * 512),
    ):
        np.fromfile(path, dtype=np.uint8).sum()  # warm the page cache
        size = path.stat().st_size
        names = [n for n in names if not any(k in n for k in args.skip)]
        rows = [r for r in (run_case(n, path, nav) for n in names) if r]
        results[label] = rows
        print(
            f"\n{label}: {args.scan}x{args.scan} scan, file {size / 1e9:.2f} GB, decoded array {array_bytes / 1e9:.2f} GB"
        )
        print(table(rows, size, array_bytes))
        frames = args.scan**2
        by = {r["case"]: r["seconds"] for r in rows}
        for ours in ("ours load_mib_data eager", "ours lazy sum over scan"):
            for other in ("built-in lazy sum over scan", "LiberTEM SumUDF (inline)"):
                if ours in by and other in by and ("lazy" in ours) == ("sum" in other):
                    print(
                        f"{ours}: {frames / by[ours]:.0f} frames/s; {other}: {frames / by[other]:.0f} frames/s; ratio {by[other] / by[ours]:.2f}x"
                    )
    # Frames lost: every frame is placed by its number (the numbers are read when opening).
    lost = make_lost_file(processed)
    np.fromfile(lost, dtype=np.uint8).sum()
    rounds = {"no frame lost": [], "3 frames lost": []}
    for _ in range(3):  # interleaved: the two loads see the same machine
        for name, path in (("no frame lost", processed), ("3 frames lost", lost)):
            row = run_case("ours load_mib_data eager", path, nav)
            if row:
                rounds[name].append(row["seconds"])
    if all(rounds.values()):
        best = {k: min(v) for k, v in rounds.items()}
        results["lost"] = best
        print(
            f"\nEager load_mib_data, fastest of three interleaved: no frame lost {best['no frame lost']:.3f} s, "
            f"3 frames lost {best['3 frames lost']:.3f} s ({best['3 frames lost'] / best['no frame lost']:.2f}x)"
        )
    pixel = make_pixel_trigger_file(args.dir)
    CASES["open lazily, shape from timestamps"] = OPEN_CASE
    row = run_case("open lazily, shape from timestamps", pixel, (256, 256))
    if row:
        results["open"] = [row]
        print(f"\nOpening a 65,536-frame pixel-triggered scan lazily (shape from timestamps): {row['seconds']:.3f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
