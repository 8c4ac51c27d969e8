"""Speed, memory and compression of ``rsciio-mib convert``, against HyperSpy's own save.

Plain script, not a test. Writes a 128x128 scan of 256x256 12-bit frames with
realistic, sparse counts (a direct-beam disc that moves, a weak background,
Poisson noise: 2.15 GB), then times each case in its own process as
``bench_read.py`` does (second of two runs, file in the page cache, peak RSS).

    python benchmarks/bench_convert.py [--scan 128] [--dir /tmp/rsciio_mib_bench]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_read import CASES, run_case, table  # noqa: E402

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
    "ours convert zspy (gzip 4)": """
        import shutil, tempfile
        from rsciio_mib_plugin import convert
        folder = tempfile.mkdtemp(dir=os.path.dirname(PATH))
        convert(PATH, folder, compression="gzip")
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
}


def make_sparse(folder: Path, scan: int) -> Path:
    from rsciio_mib_plugin import write_mib

    path = folder / f"u16_sparse_{scan}x{scan}.mib"
    if path.exists():
        return path
    rng = np.random.default_rng(1)
    y, x = np.ogrid[:256, :256]
    with open(path, "wb") as out:
        for j in range(scan):
            line = np.empty((1, scan, 256, 256), np.uint16)
            for i in range(scan):
                cy, cx = 128 + 8 * np.sin(2 * np.pi * j / scan), 128 + 8 * np.cos(2 * np.pi * i / scan)
                disc = ((y - cy) ** 2 + (x - cx) ** 2 <= 20**2) * 40.0
                line[0, i] = rng.poisson(disc + 0.05)
            part = write_mib(
                folder / "line.mib", line, counter_depth=12, hdr={"ScanY": scan, "Frames in Acquisition": scan * scan}
            )
            out.write(part.read_bytes())
    (folder / "line.hdr").replace(path.with_suffix(".hdr"))
    (folder / "line.mib").unlink()
    return path


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scan", type=int, default=128)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/rsciio_mib_bench"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = make_sparse(args.dir, args.scan)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    from rsciio_mib_plugin import convert

    archive_dir = Path(tempfile.mkdtemp(dir=args.dir))
    ratios = {}
    for compression in ("lz4", "zstd", "gzip"):
        folder = archive_dir / compression
        (report,) = convert(path, folder, compression=compression)
        ratios[compression] = report["ratio"]
    archive = archive_dir / "lz4" / f"{path.stem}.zspy"
    CASES.update(CONVERT_CASES)
    os.environ["ARCHIVE"] = str(archive)
    np.fromfile(path, dtype=np.uint8).sum()
    rows = [r for r in (run_case(name, path, (args.scan, args.scan)) for name in CONVERT_CASES) if r]
    array_bytes = args.scan**2 * 256 * 256 * 2
    print(f"\n{path.name}: file {path.stat().st_size / 1e9:.2f} GB")
    print(table(rows, path.stat().st_size, array_bytes))
    print("\ncompression ratios (array bytes / archive bytes): " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    by = {r["case"]: r["seconds"] for r in rows}
    eager, ours, theirs = (
        by.get("ours load_mib_data eager"),
        by.get("ours convert zspy (lz4, default)"),
        by.get("hs.load(lazy=True).save(zspy)"),
    )
    if eager and ours and theirs:
        print(f"convert / eager load: {ours / eager:.2f}x; hs.load(lazy).save / convert: {theirs / ours:.2f}x")
    pattern = by.get("read one pattern back (zspy, lazy hs.load)")
    if pattern:
        print(f"one pattern read back: {pattern * 1e3:.1f} ms")
    shutil.rmtree(archive_dir)


if __name__ == "__main__":
    main()
