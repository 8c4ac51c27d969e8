"""The commands of ``rsciio-mib``: each takes the parsed arguments and returns the exit code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .report import clean, describe, error, hyperspy_shape, text_block


def inputs(paths) -> list[str]:
    """Check every local input before any work: the same words for the same problem in every command."""
    from ..sources.source import check_path, is_url

    return [p if is_url(p) else check_path(p) for p in paths]


# --- info ----------------------------------------------------------------------


def info(args) -> int:
    reports, failed = [], 0
    for path in args.files:
        try:
            inputs([path])
            reports.append(describe(path, args.series, args.storage_options))
        except (OSError, ValueError) as err:
            if args.debug:
                raise
            failed += 1
            error("info", str(err))
            reports.append({"file": path, "error": str(err)})
    if args.json:
        print(json.dumps(reports, indent=1))
    else:
        for report in reports:
            if "error" not in report:
                print(clean(text_block(report)))
    return 1 if failed else 0


# --- view ------------------------------------------------------------------------


def preview(path, output, navigation_shape=None, progress: bool = False, storage_options=None) -> Path:
    """Mean pattern (log scale) and virtual bright-field image, computed lazily (:func:`.scan_preview`)."""
    from .._progress import dask_progress
    from ..reader.preview import scan_preview

    return scan_preview(path, output, navigation_shape, dask_progress(progress), storage_options)


def view(args) -> int:
    from ..sources.source import file_stem, is_url

    (path,) = inputs([args.file])
    name = file_stem(path) + "_preview.png"
    output = args.output or (Path(name) if is_url(path) else Path(path).with_name(name))  # beside a URL: here
    print(clean(preview(path, output, args.navigation_shape, args.progress, args.storage_options)))
    return 0


# --- convert ---------------------------------------------------------------------


def convert(args) -> int:
    import os

    from .._progress import progress_bar
    from ..conversion.archive import convert
    from ..sources.source import Remote, is_url

    if bool(args.files) == bool(args.watch):
        error("convert", "give the files to convert, or --watch FOLDER (not both)")
        return 2
    options = {
        "format": args.format,
        "compression": args.compression,
        "level": args.level,
        "shuffle": not args.no_shuffle,
        "chunks": args.chunks,
        "preview": args.preview,
        "navigator": None if args.navigator == "none" else args.navigator,
        "threads": args.threads,
        "navigation_shape": args.navigation_shape,
        "first_frame": args.first_frame,
        "last_frame": args.last_frame,
        "sync_offset": args.sync_offset,
        "quad_gap": args.quad_gap,
        "bin_signal": args.bin_signal,
        "bin_navigation": args.bin_navigation,
        "scheduler": args.scheduler,
    }
    if args.watch:
        return _watch(args, options)
    sizes = [Remote(p, args.storage_options).size() if is_url(p) else os.path.getsize(p) for p in inputs(args.files)]
    bar = progress_bar(args.progress, sum(sizes), "B", "convert")
    try:
        convert(
            args.files,
            args.output_dir,
            overwrite=args.overwrite,
            progress=bar.update if bar else None,
            done=lambda r: _archived(r, bar),
            series=args.series,
            storage_options=args.storage_options,
            **options,
        )
    finally:
        if bar is not None:
            bar.close()
    return 0


def _archived(r: dict, bar=None) -> None:
    """One line per archive, as soon as it is in place."""
    shape = hyperspy_shape(r["shape"][:-2][::-1], r["shape"][-2:])
    line = clean(
        f"[{r['archive']}/{r['archives']}] {r['input']} -> {r['output']}: {shape} {r['dtype']}, "
        f"{r['bytes_read'] / 1e6:.1f} MB read in {r['seconds']:.2f} s "
        f"({r['bytes_read'] / 1e6 / max(r['seconds'], 1e-9):.0f} MB/s), ratio {r['ratio']:.2f}"
    )
    if bar is not None:
        bar.write(line, file=sys.stdout)
    else:
        print(line, flush=True)


def _watch(args, options: dict) -> int:
    """``convert --watch``: until Ctrl-C, SIGTERM or ``--idle-exit``; a file that cannot be
    converted is one error line, and the watch goes on."""
    from ..conversion.watch import watch_folder

    if args.overwrite or args.series:
        error("convert", "--watch converts each acquisition once and finds series itself: drop --overwrite/--series")
        return 2
    failures = []

    def failed(path, err) -> None:
        failures.append(path)
        error("convert", str(err) if str(path) in str(err) else f"{path}: {err}")

    print(clean(f"watching {args.watch} -> {args.output_dir} (Ctrl-C to stop)"), flush=True)
    try:
        reports = watch_folder(
            args.watch, args.output_dir, settle=args.settle, idle_exit=args.idle_exit, done=_archived, failed=failed,
            **options,
        )  # fmt: skip
    except KeyboardInterrupt:
        print("stopped", flush=True)
        return 0
    print(clean(f"idle for {args.idle_exit:g} s: {len(reports)} archive(s) written"), flush=True)
    return 1 if failures else 0


# --- reference -------------------------------------------------------------------


def reference(args) -> int:
    from ..reader.reference import write_references

    inputs([args.file])
    r = write_references(
        args.file,
        args.output,
        overwrite=args.overwrite,
        storage_options=args.storage_options,
        navigation_shape=args.navigation_shape,
        first_frame=args.first_frame,
        last_frame=args.last_frame,
        sync_offset=args.sync_offset,
        navigator=args.navigator,
    )
    print(clean(f"{args.file} -> {r['output']}: {', '.join(r['arrays'])}, {r['chunks']} frames referenced"))
    return 0


# --- live ------------------------------------------------------------------------


def record(args) -> int:
    from ..live.recorder import record

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
        transfer=args.transfer,
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


def serve(args) -> int:
    import signal
    import time

    from ..live.simulator import MerlinSimulator, describe

    (path,) = inputs([args.file])

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


def watch(args) -> int:
    import time

    from ..live.growing_file import follow
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
        error("watch", f"{path}: no frames arrived")
        return 1
    scan_preview(path, output, args.navigation_shape)  # the file is complete: the picture `view` draws
    print(clean(f"{path}: {live.frames} frames seen, preview {output}"), flush=True)
    return 0
