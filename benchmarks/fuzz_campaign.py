"""Fuzz campaign: mutated .mib files, captures and .hdr files, read every way.

Not a test (it takes minutes): the outcome of each read must be data, a
``MIBFormatError``, or a documented ``ValueError``/``TypeError`` naming the
argument; anything else is a finding. Each batch runs in its own process with
a time limit, so a crash (a signal) or a hang is seen as such.

    python benchmarks/fuzz_campaign.py --files 20000 --samples ../shared/data/merlin

Prints one line per batch and a summary: files, reads, outcomes by kind, crashes,
hangs, and the first recipe of every unexpected exception.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

WORKER = r"""
import json, os, random, sys, traceback, warnings
from pathlib import Path
import numpy as np
from rsciio_mib_plugin import MIBFormatError, file_reader, load_mib_data

seeds = [Path(p) for p in json.loads(sys.argv[1])]
start, count, folder = int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
warnings.simplefilter("ignore")
rng = random.Random(start)
outcomes = {}
first = {}

def mutate(raw: bytes) -> bytes:
    raw = bytearray(raw)
    kind = rng.randrange(7)
    if kind == 0:  # random bytes in a header region
        frame = raw.find(b"MQ1,", rng.randrange(max(1, len(raw))))
        at = (frame if frame >= 0 else 0) + rng.randrange(400)
        for _ in range(rng.randrange(1, 9)):
            if at < len(raw):
                raw[at] = rng.randrange(256)
            at += 1
    elif kind == 1:  # a whole header field replaced
        frame = raw.find(b"MQ1,", rng.randrange(max(1, len(raw))))
        frame = frame if frame >= 0 else 0
        head = bytes(raw[frame:frame + 384])
        fields = head.split(b",")
        i = rng.randrange(len(fields))
        fields[i] = rng.choice([b"", b"-1", b"0", b"9" * rng.randrange(1, 400), b"1e400", b"nan", b"U07", b"R64",
                                b"  2x2G", b"3000-01-01T00:00:00Z", b"12", b"24", b"\x1b[31m", b"abc"])
        new = b",".join(fields)[:len(head)].ljust(len(head), b"\x00")
        raw[frame:frame + len(head)] = new
    elif kind == 2:  # truncated
        del raw[rng.randrange(len(raw) + 1):]
    elif kind == 3:  # bytes inserted or deleted mid-file
        at = rng.randrange(len(raw) + 1)
        if rng.random() < 0.5:
            raw[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
        else:
            del raw[at:at + rng.randrange(1, 5)]
    elif kind == 4:  # MPX prefix length damaged
        at = raw.find(b"MPX,", rng.randrange(max(1, len(raw))))
        if at >= 0:
            raw[at + 4:at + 14] = f"{rng.choice([0, 1, 2, 3, 4, 5, 10**9, rng.randrange(10**10)]):010d}".encode()
    elif kind == 5:  # a frame header copied from elsewhere
        a = raw.find(b"MQ1,", rng.randrange(max(1, len(raw))))
        b = raw.find(b"MQ1,", rng.randrange(max(1, len(raw))))
        if a >= 0 and b >= 0:
            raw[b:b + 64] = raw[a:a + 64][: len(raw[b:b + 64])]
    else:  # flipped bits anywhere
        for _ in range(rng.randrange(1, 17)):
            if raw:
                i = rng.randrange(len(raw))
                raw[i] ^= 1 << rng.randrange(8)
    return bytes(raw)

def record(kind, recipe=None):
    outcomes[kind] = outcomes.get(kind, 0) + 1
    if recipe is not None and kind not in first:
        first[kind] = recipe

for n in range(start, start + count):
    seed = seeds[n % len(seeds)]
    raw = mutate(seed.read_bytes())
    path = folder / f"f{n % 4}{seed.suffix}"
    path.write_bytes(raw)
    hdr = seed.with_suffix(".hdr")
    if hdr.exists():
        text = hdr.read_bytes()
        if rng.random() < 0.2:
            lines = text.split(b"\r\n")
            i = rng.randrange(len(lines))
            lines[i] = lines[i].split(b"\t")[0] + b"\t" + rng.choice([b"abc", b"-3", b"4.0", b"1e400", b"9" * 50, b""])
            text = b"\r\n".join(lines)
        path.with_suffix(".hdr").write_bytes(text)
    else:
        path.with_suffix(".hdr").unlink(missing_ok=True)
    calls = [
        ("buffer eager", lambda: load_mib_data(raw, return_mmap=False)),
        ("buffer mmap", lambda: np.asarray(load_mib_data(raw))),
        ("file eager", lambda: file_reader(path)[0]["data"]),
        ("file lazy", lambda: file_reader(path, lazy=True)[0]["data"].compute(scheduler="sync")),
    ]
    for name, call in calls:
        try:
            out = call()
            record("data")
        except MIBFormatError:
            record("MIBFormatError")
        except Exception as err:  # everything else is a finding
            record(f"{type(err).__name__} ({name})", {"seed": seed.name, "case": n, "error": repr(err)[:300],
                                                        "where": traceback.format_exc().splitlines()[-3][:200]})
print(json.dumps({"outcomes": outcomes, "first": first}))
"""


def seeds(folder: Path, samples: Path | None) -> list[Path]:
    """Real samples (unzipped), written files of every kind, and MPX captures."""
    import numpy as np

    from rsciio_mib_plugin import write_mib

    out = []
    if samples and samples.is_dir():
        real = folder / "real"
        for z in sorted(samples.glob("*.zip")):
            with zipfile.ZipFile(z) as f:
                f.extractall(real)
        # small ones only: each case rewrites its file
        out += sorted(p for p in real.glob("*.mib") if p.stat().st_size < 3_000_000)
    rng = np.random.default_rng(0)
    written = folder / "written"
    written.mkdir()
    cases = [
        ("u16.mib", rng.integers(0, 4096, (3, 4, 16, 256), dtype=np.uint16), {}),
        ("u8.mib", rng.integers(0, 64, (2, 3, 32, 256), dtype=np.uint8), {}),
        ("raw1.mib", rng.integers(0, 2, (2, 16, 256), dtype=np.uint8), {"raw": True, "counter_depth": 1}),
        ("rawquad.mib", rng.integers(0, 4096, (2, 512, 512), dtype=np.uint16), {"raw": True, "counter_depth": 12}),
        ("nohdr.mib", rng.integers(0, 64, (8, 16, 256), dtype=np.uint8), {"hdr": False}),
        ("capture.mib", rng.integers(0, 4096, (2, 3, 16, 256), dtype=np.uint16), {"mpx": True}),
        (
            "counters.mib",
            rng.integers(0, 64, (8, 16, 256), dtype=np.uint8),
            {"counter": [0, 1] * 4, "hdr": {"Active Counters": "Both"}},
        ),
    ]
    for name, data, kwargs in cases:
        out.append(write_mib(written / name, data, **kwargs))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per batch before it counts as a hang")
    parser.add_argument(
        "--samples", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "merlin"
    )
    args = parser.parse_args()
    totals, first = collections.Counter(), {}
    crashes = hangs = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        found = [str(p) for p in seeds(folder, args.samples)]
        work = folder / "work"
        work.mkdir()
        for start in range(0, args.files, args.batch):
            count = min(args.batch, args.files - start)
            try:
                done = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        textwrap.dedent(WORKER),
                        json.dumps(found),
                        str(start),
                        str(count),
                        str(work),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=args.timeout,
                )
            except subprocess.TimeoutExpired:
                hangs += 1
                print(f"batch {start}: HANG (over {args.timeout} s)", flush=True)
                continue
            if done.returncode != 0:
                crashes += 1
                print(f"batch {start}: CRASH exit {done.returncode}: {done.stderr[-500:]}", flush=True)
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            totals.update(result["outcomes"])
            for kind, recipe in result["first"].items():
                first.setdefault(kind, recipe)
            print(f"batch {start}: {dict(result['outcomes'])}", flush=True)
    unexpected = {k: v for k, v in totals.items() if k not in ("data", "MIBFormatError")}
    print(
        json.dumps(
            {
                "files": args.files,
                "seeds": len(found),
                "reads": sum(totals.values()),
                "outcomes": dict(totals),
                "unexpected": unexpected,
                "crashes": crashes,
                "hangs": hangs,
                "seconds": round(time.perf_counter() - started, 1),
                "first_recipes": first,
            },
            indent=1,
        )
    )
    return 1 if unexpected or crashes or hangs else 0


if __name__ == "__main__":
    sys.exit(main())
