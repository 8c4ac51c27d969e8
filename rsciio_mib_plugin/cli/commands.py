"""``rsciio-mib``: demo, info, view, convert, and live record/serve/watch of Merlin ``.mib`` data.

Exit codes: 0 success, 1 a file could not be read or written, 2 wrong usage.
Errors are one line on stderr; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    if args.progress is None:
        args.progress = sys.stderr.isatty()
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warnings(args.command)
        try:
            return args.run(args)
        except ImportError as err:
            if args.debug:
                raise
            _error(args.command, f"{err}; install it with: pip install {err.name or 'the missing module'}")
        except (OSError, ValueError, TypeError, RuntimeError) as err:
            if args.debug:
                raise
            _error(args.command, str(err))
        except KeyboardInterrupt:
            _error(args.command, "interrupted")
            return 130
    return 1


def _error(command: str, message: str) -> None:
    message = message.removeprefix("`path`: ")  # the command line names no keyword
    print(clean(f"rsciio-mib {command}: error: {message}"), file=sys.stderr)


def _one_line_warnings(command: str):
    """``warnings.showwarning`` for the command line: one line each, each message once."""
    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if "Deprecation" in category.__name__ or issubclass(category, FutureWarning):
            return  # other libraries' notes to developers, not to the person at the terminal
        text = clean(f"rsciio-mib {command}: warning: {message}")
        if text not in seen:
            seen.add(text)
            print(text, file=sys.stderr)

    return show


def clean(text: str) -> str:
    """Text from files made safe for a terminal: control characters escaped (newlines kept)."""
    return "\n".join(
        "".join(c if c.isprintable() or c == "\t" else repr(c)[1:-1] for c in line) for line in str(text).split("\n")
    )


def _parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="rsciio-mib", description="Quantum Detectors Merlin .mib files: look, view, convert."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: an option given before the command is not reset by the command's defaults.
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    common.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,
        help="progress bars (default: only when stderr is a terminal)",
    )
    parser.set_defaults(debug=False, progress=None)
    remote = argparse.ArgumentParser(add_help=False)
    remote.add_argument(
        "--storage-options", type=json.loads, help="fsspec options for URLs (s3://, https:// ...), as JSON"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo", parents=[common], help="write a realistic synthetic 4D-STEM scan, load it with hs.load, save a preview"
    )
    demo.add_argument(
        "dir", nargs="?", default="rsciio-mib-demo", help="folder for the demo files (default: %(default)s)"
    )
    demo.set_defaults(run=_demo)

    info = sub.add_parser(
        "info", parents=[common, remote], help="what is in each file: layout, type, frames, scan shape and why"
    )
    info.add_argument("files", nargs="+", help=".mib files, MPX captures or URLs")
    info.add_argument("--json", action="store_true", help="one JSON object per file, in a list")
    info.add_argument("--series", action="store_true", help="read numbered sibling files as one acquisition")
    info.set_defaults(run=_info)

    view = sub.add_parser(
        "view",
        parents=[common, remote],
        help="PNG of the mean diffraction pattern (log scale) and a virtual bright-field image",
    )
    view.add_argument("file")
    view.add_argument("-o", "--output", help="PNG to write (default: <file stem>_preview.png)")
    view.add_argument("--navigation-shape", type=_shape, help="scan shape X,Y when the file does not say it")
    view.set_defaults(run=_view)

    convert = sub.add_parser(
        "convert",
        parents=[common, remote],
        help="compressed, frame-addressable zspy (zarr) or hspy (HDF5) archives with summaries, in one pass",
    )
    convert.add_argument("files", nargs="+")
    convert.add_argument("-o", "--output-dir", required=True, help="folder for the archives")
    convert.add_argument("--format", choices=("zspy", "hspy"), default="zspy")
    convert.add_argument("--compression", choices=("lz4", "zstd", "gzip", "none"), default="lz4")
    convert.add_argument("--level", type=int, help="compression level (default: 5 lz4, 3 zstd, 4 gzip)")
    convert.add_argument("--no-shuffle", action="store_true", help="no bit-shuffle before compressing")
    convert.add_argument(
        "--chunks",
        type=_shape,
        help="chunks of the stored array, comma separated (default: whole frames, ~1 MiB compressed)",
    )
    convert.add_argument("--navigation-shape", type=_shape, help="scan shape X,Y when the files do not say it")
    convert.add_argument("--first-frame", type=int, help="first frame to convert (Python slicing)")
    convert.add_argument("--last-frame", type=int, help="frame to stop before (Python slicing)")
    convert.add_argument("--sync-offset", type=int, default=0, help="skip (>0) or prepend blank (<0) frames")
    convert.add_argument("--quad-gap", type=int, help="pixels between the chips of quad frames (3: 515x515)")
    convert.add_argument("--bin-signal", type=int, default=1, help="sum bins of N x N detector pixels")
    convert.add_argument("--bin-navigation", type=int, default=1, help="sum bins of N x N scan positions")
    convert.add_argument("--series", action="store_true", help="read numbered sibling files as one acquisition")
    convert.add_argument("--preview", action="store_true", help="also write <stem>_preview.png from the summaries")
    convert.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    convert.add_argument(
        "--threads", type=int, help="workers reading and compressing at once (default: the cores, at most 8)"
    )
    convert.set_defaults(run=_convert)

    reference = sub.add_parser(
        "reference",
        parents=[common, remote],
        help="a reference file (fsspec reference://, zarr) that reads the pixels in place, without conversion",
    )
    reference.add_argument("file", help="a processed .mib file or URL (s3://, https:// ...)")
    reference.add_argument("-o", "--output", required=True, help="the .json to write")
    reference.add_argument("--navigation-shape", type=_shape, help="scan shape X,Y when the file does not say it")
    reference.add_argument("--first-frame", type=int, help="first frame (Python slicing)")
    reference.add_argument("--last-frame", type=int, help="frame to stop before (Python slicing)")
    reference.add_argument("--sync-offset", type=int, default=0, help="skip (>0) or prepend blank (<0) frames")
    reference.add_argument("--overwrite", action="store_true", help="replace an existing reference file")
    reference.set_defaults(run=_reference)

    record = sub.add_parser(
        "record", parents=[common], help="record one acquisition from a Merlin data port into .mib and .hdr"
    )
    record.add_argument("-o", "--output", required=True, help="the .mib file to write (its .hdr goes beside it)")
    _network_options(record)
    record.add_argument("--start", action="store_true", help="start the acquisition over the control port")
    record.add_argument("--frames", type=int, help="frames to record (default: as the HDR message says)")
    record.add_argument("--timeout", type=float, default=10.0, help="seconds without data that end it (default 10)")
    record.add_argument("--overwrite", action="store_true", help="replace existing files")
    record.set_defaults(run=_record)

    serve = sub.add_parser(
        "serve", parents=[common], help="Merlin simulator: serve a .mib file on the control and data ports"
    )
    serve.add_argument("file", help="the .mib file (with its .hdr) to serve")
    _network_options(serve, "address to listen on")
    serve.add_argument("--fps", type=float, help="frames per second (default: as fast as the client takes them)")
    serve.add_argument("--repeat", type=int, default=1, help="send the file's frames K times per acquisition")
    serve.add_argument("--start-on-connect", action="store_true", help="start an acquisition on each data connection")
    serve.add_argument("--drop-frames", type=_indices, default=(), help="rehearsal: frame indices not sent (1,5,9)")
    serve.add_argument("--close-after", type=int, help="rehearsal: close the data connection after N bytes")
    serve.set_defaults(run=_serve)

    watch = sub.add_parser(
        "watch", parents=[common], help="follow a .mib file being written; keep a preview PNG up to date"
    )
    watch.add_argument("file", help="the .mib file being written")
    watch.add_argument("--preview", help="PNG to keep up to date (default: <file stem>_live.png)")
    watch.add_argument("--frames", type=int, help="frames to expect (default: as the .hdr says)")
    watch.add_argument("--timeout", type=float, default=10.0, help="seconds without growth that end it (default 10)")
    watch.add_argument("--navigation-shape", type=_shape, help="scan shape X,Y when the .hdr does not say it")
    watch.add_argument("--interval", type=float, default=1.0, help="seconds between preview updates (default 1)")
    watch.set_defaults(run=_watch)
    return parser


def _network_options(parser, host: str = "detector address") -> None:
    parser.add_argument("--host", default="127.0.0.1", help=f"{host} (default: %(default)s)")
    parser.add_argument("--data-port", type=int, default=6342, help="data port (default: %(default)s)")
    parser.add_argument("--control-port", type=int, default=6341, help="control port (default: %(default)s)")


def _indices(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected frame indices separated by commas, got {text!r}") from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"frame indices start at 0, got {text!r}")
    return values


def _shape(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return values


def _inputs(paths) -> list[str]:
    """Check every local input before any work: the same words for the same problem in every command."""
    from ..sources.source import check_path, is_url

    return [p if is_url(p) else check_path(p) for p in paths]


# --- info ----------------------------------------------------------------------


def describe(path, series: bool = False, storage_options: dict | None = None) -> dict:
    """Everything ``info`` reports about one file, as plain values."""

    from ..format.frame_header import header_timestamp
    from ..reader.frames import read_headers
    from ..reader.load import plan_datasets
    from ..reader.properties import MIBProperties
    from ..sources.source import segment_source

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prop = MIBProperties.from_path(path, series=series, storage_options=storage_options)
        plans = plan_datasets(prop, None, None, None, None)
    header = prop.header
    last_segment = prop.segments[-1]
    last_source = segment_source(last_segment) if last_segment.path else prop.source
    first = header_timestamp(read_headers(prop.source, prop.geometry, 0, 1)[0])
    last = header_timestamp(read_headers(last_source, prop.geometry, last_segment.count - 1, 1)[0])
    kept = ("frames_after_scan", "incomplete_line_frames", "frames_missing")
    zone = "" if header.utc_timestamp else " (Merlin PC local time)"

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
        "first_timestamp": first + zone,
        "last_timestamp": last + zone,
        "hdr": str(prop.hdr_path) if prop.hdr_path else None,
        "mpx_capture": prop.mpx_capture,
        "trailing_bytes": prop.trailing_bytes,
        "warnings": [str(w.message) for w in caught],
    }


def _info(args) -> int:
    reports, failed = [], 0
    for path in args.files:
        try:
            _inputs([path])
            reports.append(describe(path, args.series, args.storage_options))
        except (OSError, ValueError) as err:
            if args.debug:
                raise
            failed += 1
            _error("info", str(err))
            reports.append({"file": path, "error": str(err)})
    if args.json:
        print(json.dumps(reports, indent=1))
    else:
        for report in reports:
            if "error" not in report:
                print(clean(_text_block(report)))
    return 1 if failed else 0


def scan_summary(dataset: dict) -> str:
    """``4 x 2 (frame timestamps (line gaps))``, ``stack of 9 frames (why)``, ``single frame``."""
    shape, rule = dataset["navigation_shape"], dataset["rule"]
    if not shape:
        return "single frame"
    if rule.startswith("stack"):
        why = rule[len("stack") :].strip()
        why = why[1:-1] if why.startswith("(") and why.endswith(")") else why
        return f"stack of {shape[0]} frames" + (f" ({why})" if why else "")
    return " x ".join(map(str, shape)) + f"  (from {rule})"


def _text_block(r: dict) -> str:
    lines = [
        r["file"],
        f"  layout        {r['layout']} ({r['chips']} chip{'s' if r['chips'] > 1 else ''}), frames {r['frame_shape'][1]}x{r['frame_shape'][0]} px",
        f"  pixels        {r['pixel_type']}{' RAW' if r['raw'] else ''}, counter depth {r['counter_depth'] or 'not stated'}, read as {r['dtype']}",
        f"  frames        {r['frames']} in {r['files']} file(s), {r['frame_bytes']} bytes each",
    ]
    for d in r["datasets"]:
        label = "scan" if d["counter"] is None else f"counter {d['counter']}"
        lines.append(f"  {label:<13} {scan_summary(d)}")
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


def preview(path, output, navigation_shape=None, progress: bool = False, storage_options=None) -> Path:
    """Mean pattern (log scale) and virtual bright-field image, computed lazily (:func:`.scan_preview`)."""
    from .._progress import dask_progress
    from ..reader.preview import scan_preview

    return scan_preview(path, output, navigation_shape, dask_progress(progress), storage_options)


def _view(args) -> int:
    from ..sources.source import is_url

    (path,) = _inputs([args.file])
    output = args.output or Path(path).with_name(Path(path).stem + "_preview.png")
    if is_url(path) and not args.output:
        output = Path(Path(path).stem + "_preview.png")  # beside a URL: here
    print(clean(preview(path, output, args.navigation_shape, args.progress, args.storage_options)))
    return 0


# --- convert ---------------------------------------------------------------------


def _convert(args) -> int:
    import os

    from .._progress import progress_bar
    from ..conversion.archive import convert
    from ..sources.source import Remote, is_url

    sizes = [Remote(p, args.storage_options).size() if is_url(p) else os.path.getsize(p) for p in _inputs(args.files)]
    bar = progress_bar(args.progress, sum(sizes), "B", "convert")

    def done(r: dict) -> None:  # one line per archive, as soon as it is in place
        shape = "x".join(map(str, r["shape"]))
        line = clean(
            f"[{r['archive']}/{r['archives']}] {r['input']} -> {r['output']}: {shape} {r['dtype']}, "
            f"{r['bytes_read'] / 1e6:.1f} MB read in {r['seconds']:.2f} s "
            f"({r['bytes_read'] / 1e6 / max(r['seconds'], 1e-9):.0f} MB/s), ratio {r['ratio']:.2f}"
        )
        if bar is not None:
            bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)

    try:
        convert(
            args.files,
            args.output_dir,
            format=args.format,
            compression=args.compression,
            level=args.level,
            shuffle=not args.no_shuffle,
            chunks=args.chunks,
            overwrite=args.overwrite,
            preview=args.preview,
            threads=args.threads,
            progress=bar.update if bar else None,
            done=done,
            navigation_shape=args.navigation_shape,
            first_frame=args.first_frame,
            last_frame=args.last_frame,
            sync_offset=args.sync_offset,
            quad_gap=args.quad_gap,
            bin_signal=args.bin_signal,
            bin_navigation=args.bin_navigation,
            series=args.series,
            storage_options=args.storage_options,
        )
    finally:
        if bar is not None:
            bar.close()
    return 0


# --- reference -------------------------------------------------------------------


def _reference(args) -> int:
    from ..reader.reference import write_references

    _inputs([args.file])
    r = write_references(
        args.file,
        args.output,
        overwrite=args.overwrite,
        storage_options=args.storage_options,
        navigation_shape=args.navigation_shape,
        first_frame=args.first_frame,
        last_frame=args.last_frame,
        sync_offset=args.sync_offset,
    )
    print(clean(f"{args.file} -> {r['output']}: {', '.join(r['arrays'])}, {r['chunks']} frames referenced"))
    return 0


# --- live ------------------------------------------------------------------------


def _record(args) -> int:
    from ..live.acquisition import record

    r = record(
        args.output,
        args.host,
        args.data_port,
        args.control_port,
        start=args.start,
        frames=args.frames,
        timeout=args.timeout,
        show_progressbar=args.progress,
        overwrite=args.overwrite,
    )
    lost = f", {len(r['lost_frames'])} lost" if r["lost_frames"] else ""
    print(
        clean(
            f"recorded {r['frames']} frames{lost}, {r['bytes'] / 1e6:.1f} MB in {r['seconds']:.2f} s "
            f"({r['mb_per_s']:.0f} MB/s) -> {r['path']}" + (f" and {r['hdr']}" if r["hdr"] else "")
        ),
        flush=True,
    )
    return 0 if r["complete"] and not r["lost_frames"] else 1


def _serve(args) -> int:
    import signal
    import time

    from ..live.simulator import MerlinSimulator, describe

    (path,) = _inputs([args.file])

    def log(text: str) -> None:
        print(clean(text), flush=True)

    simulator = MerlinSimulator(
        path,
        args.host,
        args.data_port,
        args.control_port,
        fps=args.fps,
        repeat=args.repeat,
        start_on_connect=args.start_on_connect,
        drop_frames=args.drop_frames,
        close_after=args.close_after,
        log=log,
    )

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with simulator:
        log(describe(simulator) + " (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            log("stopped")
    return 0


def _watch(args) -> int:
    import time

    from ..live.acquisition import follow
    from ..live.preview import LivePreview
    from ..reader.preview import scan_preview

    path = Path(args.file)
    output = Path(args.preview or path.with_name(path.stem + "_live.png"))
    live, shown = None, 0.0
    for first, frames in follow(path, frames=args.frames, timeout=args.timeout):
        if live is None:
            live = LivePreview(path, frames.shape[1:], args.navigation_shape)
        live.add(first, frames)
        if time.monotonic() - shown >= args.interval:
            live.save(output, str(path))
            shown = time.monotonic()
    if live is None:
        _error("watch", f"{path}: no frames arrived")
        return 1
    scan_preview(path, output, args.navigation_shape)  # the file is complete: the picture `view` draws
    print(clean(f"{path}: {live.frames} frames seen, preview {output}"), flush=True)
    return 0


# --- demo ------------------------------------------------------------------------


#: Dwell per scan position and the extra time the beam takes to fly back at
#: the end of each line: the gaps the timestamp rule finds (mib-format.md §10).
DEMO_DWELL_S = 0.001
DEMO_FLYBACK_S = 0.0005


def demo_scan(scan=(24, 32), frame=(256, 256), seed=0):
    """A realistic small 4D-STEM scan (12-bit counts).

    A direct-beam disc that shifts across the scan (as a field or thickness
    change would deflect it), six Bragg discs that appear in a grain on the
    right of the scan, a weak diffuse background and Poisson noise.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    ny, nx = scan
    rows, cols = frame
    y, x = np.ogrid[:rows, :cols]
    data = np.empty((ny, nx, rows, cols), dtype=np.uint16)
    angles = np.deg2rad(np.arange(0, 360, 60) + 15)
    for j in range(ny):
        for i in range(nx):
            cy = rows / 2 + 6 * np.sin(2 * np.pi * j / ny)
            cx = cols / 2 + 6 * np.cos(2 * np.pi * i / nx)
            r2 = (y - cy) ** 2 + (x - cx) ** 2
            grain = 1 / (1 + np.exp(-(i - 0.6 * nx) / 1.5)) * (0.5 + 0.5 * np.cos(np.pi * j / ny) ** 2)
            # What the grain diffracts leaves the direct beam: bright-field contrast.
            expected = 120.0 * (1 - 0.5 * grain) * (r2 <= 18**2) + 30.0 * np.exp(-r2 / (2 * 60.0**2)) + 0.5
            for a in angles:
                by, bx = cy + 70 * np.sin(a), cx + 70 * np.cos(a)
                expected = expected + 60.0 * grain * (((y - by) ** 2 + (x - bx) ** 2) <= 9**2)
            data[j, i] = rng.poisson(expected)
    return np.clip(data, 0, 4095)


def write_demo(folder, scan=(24, 32), frame=(256, 256)) -> Path:
    """Write the demo scan as a pixel-triggered acquisition: a ``.hdr`` without
    the scan shape (one frame per trigger), lines told apart by the flyback
    gaps in the frame timestamps."""
    import numpy as np

    from ..format.write import write_mib

    data = demo_scan(scan, frame)
    ny, nx = data.shape[:2]
    step = int(DEMO_DWELL_S * 1e9)
    times = np.arange(ny * nx, dtype=np.int64) * step + np.repeat(np.arange(ny), nx) * int(DEMO_FLYBACK_S * 1e9)
    times += np.datetime64("2026-01-15T10:30:00", "ns").astype(np.int64)
    hdr = {"ScanX": None, "ScanY": None, "Frames per Trigger": 1, "Trigger Start": "Rising Edge LVDS"}
    return write_mib(
        Path(folder) / "demo_scan.mib", data, counter_depth=12, exposure=DEMO_DWELL_S, timestamps=times, hdr=hdr
    )


def _demo(args) -> int:
    import hyperspy.api as hs
    import numpy as np

    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = write_demo(folder)
    print(f"wrote {path} and {path.with_suffix('.hdr')} (pixel trigger: the .hdr has no scan shape)")
    s = hs.load(path)
    print(s)
    print(f"io_plugin: {s.metadata.General.FileIO.Number_0.io_plugin}")
    print(f"scan shape rule: {s.original_metadata.mib_plugin.navigation_shape_rule}")
    print(f"data: {s.data.dtype}, {s.data.nbytes / 1e6:.1f} MB, total counts {int(s.data.sum())}")
    print(s.metadata)
    try:
        import pyxem  # noqa: F401
    except ImportError:
        print("pyxem is not installed: pip install pyxem for the direct-beam step")
    else:
        shifts = s.get_direct_beam_position(method="center_of_mass", signal_slice=(88, 168, 88, 168))
        centre = np.asarray(shifts.data) + np.array(s.axes_manager.signal_shape) / 2
        print(
            "direct beam (pyxem centre of mass): x "
            f"{centre[..., 0].min():.1f}..{centre[..., 0].max():.1f} px, y "
            f"{centre[..., 1].min():.1f}..{centre[..., 1].max():.1f} px"
        )
    print(f"preview: {preview(path, folder / 'demo_preview.png', progress=args.progress)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
