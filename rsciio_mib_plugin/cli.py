"""``rsciio-mib``: demo, info, view and convert Merlin ``.mib`` files.

Exit codes: 0 success, 1 a file could not be read or written, 2 wrong usage.
Errors are one line on stderr; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except (OSError, ValueError, TypeError) as err:
        if args.debug:
            raise
        print(f"rsciio-mib {args.command}: error: {err}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rsciio-mib", description="Quantum Detectors Merlin .mib files: look, view, convert."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="write a small synthetic 4D-STEM scan, load it with hs.load, save a preview")
    demo.add_argument(
        "dir", nargs="?", default="rsciio-mib-demo", help="folder for the demo files (default: %(default)s)"
    )
    demo.set_defaults(run=_demo)

    info = sub.add_parser("info", help="what is in each file: layout, type, frames, scan shape and why")
    info.add_argument("files", nargs="+", help=".mib files or MPX captures")
    info.add_argument("--json", action="store_true", help="one JSON object per file, in a list")
    info.add_argument("--series", action="store_true", help="read numbered sibling files as one acquisition")
    info.set_defaults(run=_info)

    view = sub.add_parser(
        "view", help="PNG of the mean diffraction pattern (log scale) and a virtual bright-field image"
    )
    view.add_argument("file")
    view.add_argument("-o", "--output", help="PNG to write (default: <file stem>_preview.png)")
    view.add_argument("--navigation-shape", type=_shape, help="scan shape X,Y when the file does not say it")
    view.set_defaults(run=_view)

    convert = sub.add_parser("convert", help="stream files into HyperSpy zspy (zarr) or hspy (HDF5) with compression")
    convert.add_argument("files", nargs="+")
    convert.add_argument("-o", "--output-dir", required=True, help="folder for the converted files")
    convert.add_argument("--format", choices=("zspy", "hspy"), default="zspy")
    convert.add_argument(
        "--chunks", type=_shape, help="chunks of the saved array, comma separated (default: HyperSpy's)"
    )
    convert.add_argument("--navigation-shape", type=_shape, help="scan shape X,Y when the files do not say it")
    convert.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    convert.set_defaults(run=_convert)
    return parser


def _shape(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return values


# --- info ----------------------------------------------------------------------


def describe(path, series: bool = False) -> dict:
    """Everything ``info`` reports about one file, as plain values."""
    import numpy as np

    from ._api import _plans, read_evidence
    from .header import parse_evidence
    from .properties import MIBProperties
    from .read import read_headers
    from .source import segment_source

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prop = MIBProperties.from_path(path, series=series)
        plans = _plans(prop, None, None, None, None)
    header = prop.header
    first = read_evidence(prop, 1).times_ns
    last_segment = prop.segments[-1]
    last_source = segment_source(last_segment) if last_segment.path else prop.source
    last = parse_evidence(read_headers(last_source, prop.geometry, last_segment.count - 1, 1))[0]
    kept = ("frames_after_scan", "incomplete_line_frames", "frames_missing")
    zone = "Z" if header.utc_timestamp else " (Merlin PC local time)"

    def dropped(plan) -> dict:
        out = {k: v for k, v in plan.details.items() if k in kept}
        if "flyback" in plan.details:
            out["flyback_frames"] = plan.details["flyback"].get("dropped_frames", 0)
        return out

    return {
        "file": str(path),
        "layout": header.layout,
        "chips": header.chips,
        "pixel_type": header.pixel_type,
        "raw": header.raw,
        "counter_depth": prop.counter_depth,
        "frame_shape": list(prop.geometry.shape),
        "dtype": prop.dtype,
        "frame_bytes": prop.geometry.frame_bytes,
        "frames": prop.number_of_frames_in_file,
        "files": len(prop.segments),
        "datasets": [
            {
                "counter": plan.counter,
                "navigation_shape": list(plan.shape[::-1]),
                "rule": plan.rule,
                "frames_read": plan.count,
                "dropped": dropped(plan),
            }
            for plan in plans
        ],
        "exposure_ms": prop.exposure,
        "first_timestamp": str(np.datetime64(int(first[0]), "ns")) + zone if first is not None else header.timestamp,
        "last_timestamp": str(np.datetime64(int(last[0]), "ns")) + zone if last is not None else None,
        "hdr": str(prop.hdr_path) if prop.hdr_path else None,
        "mpx_capture": prop.stream,
        "trailing_bytes": prop.trailing_bytes,
        "warnings": [str(w.message) for w in caught],
    }


def _info(args) -> int:
    reports, failed = [], 0
    for path in args.files:
        try:
            reports.append(describe(path, args.series))
        except (OSError, ValueError) as err:
            if args.debug:
                raise
            failed += 1
            reports.append({"file": path, "error": str(err)})
    if args.json:
        print(json.dumps(reports, indent=1))
    else:
        for report in reports:
            print(_text_block(report))
    return 1 if failed else 0


def _text_block(r: dict) -> str:
    if "error" in r:
        return f"{r['file']}\n  error: {r['error']}\n"
    lines = [
        r["file"],
        f"  layout        {r['layout']} ({r['chips']} chip{'s' if r['chips'] > 1 else ''}), frames {r['frame_shape'][1]}x{r['frame_shape'][0]} px",
        f"  pixels        {r['pixel_type']}{' RAW' if r['raw'] else ''}, counter depth {r['counter_depth'] or 'not stated'}, read as {r['dtype']}",
        f"  frames        {r['frames']} in {r['files']} file(s), {r['frame_bytes']} bytes each",
    ]
    for d in r["datasets"]:
        label = "scan" if d["counter"] is None else f"counter {d['counter']}"
        shape = " x ".join(map(str, d["navigation_shape"])) or "single frame"
        lines.append(f"  {label:<13} {shape}  ({d['rule']})")
        if d["dropped"]:
            lines.append("  dropped       " + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in d["dropped"].items()))
    lines += [
        f"  exposure      {r['exposure_ms']} ms",
        f"  time          {r['first_timestamp']} .. {r['last_timestamp']}",
        f"  .hdr          {r['hdr'] or 'not found'}",
    ]
    if r["trailing_bytes"]:
        lines.append(f"  incomplete    last {r['trailing_bytes']} bytes ignored")
    lines += [f"  warning       {w}" for w in r["warnings"]]
    return "\n".join(lines) + "\n"


# --- view ------------------------------------------------------------------------


def preview(path, output, navigation_shape=None) -> Path:
    """Mean pattern (log scale) and virtual bright-field image, computed lazily."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ._api import file_reader

    (d,) = file_reader(path, lazy=True, navigation_shape=navigation_shape)[:1]
    data = d["data"]
    nav = data.ndim - 2
    mean = np.asarray(data.mean(axis=tuple(range(nav))).compute() if nav else data.compute(), dtype=float)
    rows, cols = mean.shape
    y, x = np.ogrid[:rows, :cols]
    cy, cx = np.unravel_index(np.argmax(mean), mean.shape) if mean.max() > 0 else (rows // 2, cols // 2)
    weights = mean * ((y - cy) ** 2 + (x - cx) ** 2 <= (min(rows, cols) / 16) ** 2)
    cy, cx = [
        float(v)
        for v in (
            np.average(np.arange(rows), weights=weights.sum(1) + 1e-12),
            np.average(np.arange(cols), weights=weights.sum(0) + 1e-12),
        )
    ]
    disc = ((y - cy) ** 2 + (x - cx) ** 2) <= (min(rows, cols) / 8) ** 2
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), dpi=100)
    axes[0].imshow(np.log1p(mean), cmap="inferno")
    axes[0].add_patch(plt.Circle((cx, cy), min(rows, cols) / 8, fill=False, color="cyan"))
    axes[0].set_title("mean diffraction pattern (log)")
    if nav >= 1:
        vbf = (data * disc).sum(axis=(-2, -1)).compute()
        vbf = vbf.reshape(vbf.shape[0], -1) if nav >= 2 else vbf[None, :]
        axes[1].imshow(vbf, cmap="gray")
        axes[1].set_title("virtual bright field")
    else:
        axes[1].set_axis_off()
        axes[1].set_title("single frame: no scan")
    fig.suptitle(os.path.basename(str(path)))
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)
    return Path(output)


def _view(args) -> int:
    output = args.output or Path(args.file).with_name(Path(args.file).stem + "_preview.png")
    print(preview(args.file, output, args.navigation_shape))
    return 0


# --- convert ---------------------------------------------------------------------


def _convert(args) -> int:
    import hyperspy.api as hs

    import rsciio_mib_plugin

    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = [(Path(f), out_dir / (Path(f).stem + "." + args.format)) for f in args.files]
    existing = [str(t) for _, t in targets if t.exists()]
    if existing and not args.overwrite:
        raise ValueError(f"not overwriting {', '.join(existing)} (use --overwrite)")
    for i, (source, target) in enumerate(targets, 1):
        print(f"[{i}/{len(targets)}] {source} -> {target}", flush=True)
        signal = hs.load(source, file_format=rsciio_mib_plugin, lazy=True, navigation_shape=args.navigation_shape)
        signals = signal if isinstance(signal, list) else [signal]
        for s in signals:
            counter = s.original_metadata.get_item("mib_plugin.counter")
            name = target if len(signals) == 1 else target.with_name(f"{target.stem}_counter{counter}{target.suffix}")
            kwargs = {"chunks": args.chunks} if args.chunks else {}
            s.save(name, overwrite=True, show_progressbar=True, **kwargs)
    return 0


# --- demo ------------------------------------------------------------------------


def demo_scan(scan=(24, 32), frame=(256, 256), seed=0):
    """A small 4D-STEM scan whose diffraction disc shifts across the scan."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ny, nx = scan
    rows, cols = frame
    y, x = np.ogrid[:rows, :cols]
    data = np.empty((ny, nx, rows, cols), dtype=np.uint16)
    for j in range(ny):
        for i in range(nx):
            cy = rows / 2 + 12 * np.sin(2 * np.pi * j / ny)
            cx = cols / 2 + 12 * np.cos(2 * np.pi * i / nx)
            disc = ((y - cy) ** 2 + (x - cx) ** 2 <= 30**2) * 200.0
            data[j, i] = rng.poisson(disc + 2.0)
    return np.clip(data, 0, 4095)


def _demo(args) -> int:
    import hyperspy.api as hs

    from .write import write_mib

    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = write_mib(folder / "demo_scan.mib", demo_scan(), counter_depth=12)
    print(f"wrote {path} and {path.with_suffix('.hdr')}")
    s = hs.load(path)
    print(s)
    print(f"io_plugin: {s.metadata.General.FileIO.Number_0.io_plugin}")
    print(f"scan shape rule: {s.original_metadata.mib_plugin.navigation_shape_rule}")
    print(f"data: {s.data.dtype}, {s.data.nbytes / 1e6:.1f} MB, total counts {int(s.data.sum())}")
    print(f"preview: {preview(path, folder / 'demo_preview.png')}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
