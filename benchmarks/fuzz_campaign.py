"""Fuzz campaign: mutated .mib files, captures and .hdr files read every way; a hostile detector
on loopback (data and control ports); hostile reference files (``fuzz_surfaces.py``).

Not a test (it takes minutes): the outcome of each case must be data or a documented
error (``MIBFormatError``; for live calls also ``TimeoutError``, ``ConnectionError`` and
``MerlinCommandError``); anything else is a finding, and so is a live call that overruns
its timeout, a reference that returns a planted key's bytes, or any change to a file
outside the work folder. Each batch runs in its own process with a time and memory limit
(8 GiB address space), so a crash (a signal), a hang or a runaway allocation is seen.

    python benchmarks/fuzz_campaign.py --files 20000 --detector 3000 --control 2000 --references 3000

Prints one line per batch and a summary: cases, outcomes by kind, crashes, hangs, files
touched, and the first recipe of every unexpected outcome.
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

sys.path.insert(0, sys.argv[5])
from fuzz_surfaces import mutate

seeds = [Path(p) for p in json.loads(sys.argv[1])]
start, count, folder = int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
warnings.simplefilter("ignore")
rng = random.Random(start)
outcomes = {}
first = {}

def record(kind, recipe=None):
    outcomes[kind] = outcomes.get(kind, 0) + 1
    if recipe is not None and kind not in first:
        first[kind] = recipe

for n in range(start, start + count):
    seed = seeds[n % len(seeds)]
    raw = mutate(seed.read_bytes(), rng)
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


def planted(folder: Path, written: list[Path]) -> list[Path]:
    """Reference files of the written seeds, and what hostile ones may point at instead (a planted
    key, the same bytes named ``.mib``, another real ``.mib``): ``planted.json`` beside them."""
    from fuzz_surfaces import SECRET

    from rsciio_mib_plugin import write_references

    refs = folder / "references"
    refs.mkdir()
    out = []
    for path in written:
        if path.stem in ("raw1", "rawquad", "capture"):  # RAW frames have no byte range; refused by design
            continue
        write_references(path, refs / f"{path.stem}.json")
        out.append(refs / f"{path.stem}.json")
    secret = folder / "secret"
    secret.mkdir()
    (secret / "id_rsa").write_bytes(SECRET * 4096)
    (secret / "id_rsa.mib").write_bytes(SECRET * 4096)
    other = secret / "other.mib"
    other.write_bytes(written[0].read_bytes())
    names = {"key": secret / "id_rsa", "key.mib": secret / "id_rsa.mib", "other.mib": other}
    (refs / "planted.json").write_text(json.dumps({k: str(v) for k, v in names.items()}))
    return out


def snapshot(folder: Path, skip: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file under ``folder`` but ``skip``: what no case may touch."""
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file() and skip not in p.parents
    }


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


#: Address space of a worker: an allocation sized by a hostile number fails as a MemoryError (a finding).
MEMORY_LIMIT = 8 << 30
#: The documented outcomes: anything else is a finding.
EXPECTED = {"data", "MIBFormatError", "TimeoutError", "ConnectionError", "MerlinCommandError"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20000, help="mutated files, read four ways each")
    parser.add_argument("--detector", type=int, default=3000, help="hostile data-port streams")
    parser.add_argument("--control", type=int, default=2000, help="hostile control-port replies")
    parser.add_argument("--references", type=int, default=3000, help="hostile reference files")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per batch before it counts as a hang")
    parser.add_argument(
        "--samples", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "merlin"
    )
    args = parser.parse_args()
    here = str(Path(__file__).resolve().parent)
    sys.path.insert(0, here)
    totals, first = collections.Counter(), {}
    crashes = hangs = touched = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = seeds(folder, args.samples)
        written = [p for p in files if p.parent.name == "written"]
        refs = planted(folder, written)
        work = folder / "work"
        work.mkdir()
        before = snapshot(folder, work)
        surfaces = [
            ("files", args.files, [sys.executable, "-c", textwrap.dedent(WORKER)], files),
            ("detector", args.detector, [sys.executable, f"{here}/fuzz_surfaces.py", "detector"], written),
            ("control", args.control, [sys.executable, f"{here}/fuzz_surfaces.py", "control"], written),
            ("references", args.references, [sys.executable, f"{here}/fuzz_surfaces.py", "references"], refs),
        ]
        cases = {}
        for surface, number, command, found in surfaces:
            cases[surface] = number
            for start in range(0, number, args.batch):
                count = min(args.batch, number - start)
                argv = [*command, json.dumps([str(p) for p in found]), str(start), str(count), str(work), here]
                try:
                    done = subprocess.run(
                        argv, capture_output=True, text=True, timeout=args.timeout, cwd=work, preexec_fn=_limit_memory
                    )
                except subprocess.TimeoutExpired:
                    hangs += 1
                    print(f"{surface} {start}: HANG (over {args.timeout} s)", flush=True)
                    continue
                if snapshot(folder, work) != before:
                    touched += 1
                    print(f"{surface} {start}: a file outside the work folder changed", flush=True)
                    before = snapshot(folder, work)
                if done.returncode != 0:
                    crashes += 1
                    print(f"{surface} {start}: CRASH exit {done.returncode}: {done.stderr[-500:]}", flush=True)
                    continue
                result = json.loads(done.stdout.strip().splitlines()[-1])
                totals.update({f"{surface}: {k}": v for k, v in result["outcomes"].items()})
                for kind, recipe in result["first"].items():
                    first.setdefault(f"{surface}: {kind}", recipe)
                print(f"{surface} {start}: {dict(result['outcomes'])}", flush=True)
    unexpected = {k: v for k, v in totals.items() if k.split(": ", 1)[1] not in EXPECTED}
    print(
        json.dumps(
            {
                "cases": cases,
                "seeds": len(files),
                "outcomes": dict(totals),
                "unexpected": unexpected,
                "crashes": crashes,
                "hangs": hangs,
                "touched": touched,
                "seconds": round(time.perf_counter() - started, 1),
                "first_recipes": first,
            },
            indent=1,
        )
    )
    return 1 if unexpected or crashes or hangs or touched else 0


if __name__ == "__main__":
    sys.exit(main())
