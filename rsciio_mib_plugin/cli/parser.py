"""The arguments of ``rsciio-mib`` and its commands."""

from __future__ import annotations

import argparse
import json

from . import commands
from .demo import demo as demo_command


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, as every other error of the command line (``--help`` shows usage)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(prog="rsciio-mib", description="Quantum Detectors Merlin .mib files: look, view, convert.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = _Parser(add_help=False)
    # SUPPRESS: an option given before the command is not reset by the command's defaults.
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    common.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,
        help="progress bars (default: only when stderr is a terminal)",
    )
    parser.set_defaults(debug=False, progress=None)
    remote = _Parser(add_help=False)
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
    demo.set_defaults(run=demo_command)

    info = sub.add_parser(
        "info", parents=[common, remote], help="what is in each file: layout, type, frames, scan shape and why"
    )
    info.add_argument("files", nargs="+", help=".mib files, MPX captures or URLs")
    info.add_argument("--json", action="store_true", help="one JSON object per file, in a list")
    info.add_argument("--series", action="store_true", help="read numbered sibling files as one acquisition")
    info.set_defaults(run=commands.info)

    view = sub.add_parser(
        "view",
        parents=[common, remote],
        help="PNG of the mean diffraction pattern (log scale) and a virtual bright-field image",
    )
    view.add_argument("file")
    view.add_argument("-o", "--output", help="PNG to write (default: <file stem>_preview.png)")
    view.add_argument("--navigation-shape", type=_shape, help="scan shape X,Y when the file does not say it")
    view.set_defaults(run=commands.view)

    convert = sub.add_parser(
        "convert",
        parents=[common, remote],
        help="compressed, frame-addressable zspy (zarr) or hspy (HDF5) archives with summaries, in one pass",
    )
    convert.add_argument("files", nargs="*", help=".mib files or URLs (or --watch FOLDER)")
    convert.add_argument("-o", "--output-dir", required=True, help="folder for the archives")
    convert.add_argument(
        "--watch", metavar="FOLDER", help="convert each acquisition written into FOLDER once it is complete"
    )
    convert.add_argument(
        "--settle",
        type=_seconds,
        default=5.0,
        help="with --watch: seconds unchanged after which a file without a frame count is complete (default 5)",
    )
    convert.add_argument(
        "--idle-exit", type=_seconds, help="with --watch: stop after this many seconds with nothing left to do"
    )
    convert.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a dask.distributed cluster (tcp://host:8786); workers must see the inputs and the output folder",
    )
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
    convert.add_argument(
        "--navigator",
        choices=("total", "bright_field", "none"),
        default="total",
        help="navigator stored for HyperSpy's plot (default: %(default)s, counts per position)",
    )
    convert.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    convert.add_argument(
        "--threads", type=int, help="workers reading and compressing at once (default: the cores, at most 8)"
    )
    convert.set_defaults(run=commands.convert)

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
    reference.add_argument(
        "--navigator",
        choices=("total", "bright_field"),
        help="also store a navigator for HyperSpy's plot (one pass over the pixels)",
    )
    reference.set_defaults(run=commands.reference)

    record = sub.add_parser(
        "record", parents=[common], help="record one acquisition from a Merlin data port into .mib and .hdr"
    )
    record.add_argument("-o", "--output", required=True, help="the .mib file to write (its .hdr goes beside it)")
    _network_options(record)
    record.add_argument("--start", action="store_true", help="start the acquisition over the control port")
    record.add_argument("--frames", type=int, help="frames to record (default: as the HDR message says)")
    record.add_argument("--timeout", type=float, default=10.0, help="seconds without data that end it (default 10)")
    record.add_argument("--overwrite", action="store_true", help="replace existing files")
    record.add_argument(
        "--transfer",
        choices=("auto", "splice", "copy"),
        default="auto",
        help="splice: pixels moved inside the kernel (Linux); copy: through a buffer (default: splice where possible)",
    )
    record.set_defaults(run=commands.record)

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
    serve.set_defaults(run=commands.serve)

    watch = sub.add_parser(
        "watch", parents=[common], help="follow a .mib file being written; keep a preview PNG up to date"
    )
    watch.add_argument("file", help="the .mib file being written")
    watch.add_argument("--preview", help="PNG to keep up to date (default: <file stem>_live.png)")
    watch.add_argument("--frames", type=int, help="frames to expect (default: as the .hdr says)")
    watch.add_argument("--timeout", type=float, default=10.0, help="seconds without growth that end it (default 10)")
    watch.add_argument("--navigation-shape", type=_shape, help="scan shape X,Y when the .hdr does not say it")
    watch.add_argument("--interval", type=float, default=1.0, help="seconds between preview updates (default 1)")
    watch.set_defaults(run=commands.watch)
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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds >= 0, got {text!r}")
    return value


def _shape(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return values
