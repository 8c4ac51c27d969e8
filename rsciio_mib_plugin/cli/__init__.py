"""The ``rsciio-mib`` command line.

Exit codes: 0 success, 1 a file could not be read or written, 2 wrong usage.
Errors are one line on stderr; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import contextlib
import re
import signal
import sys
import threading
import warnings

from ..errors import MIBFormatError, OutputExists
from .parser import build_parser
from .report import error, one_line_warnings


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    if args.progress is None:
        args.progress = sys.stderr.isatty()
    with warnings.catch_warnings(), _terminate_as_interrupt():
        warnings.showwarning = one_line_warnings(args.command)
        try:
            return args.run(args)
        except KeyboardInterrupt:
            error(args.command, "interrupted")
            return 130
        except (OSError, ValueError, TypeError, RuntimeError, ImportError) as err:
            if args.debug:
                raise
            message, code = explain(err, vars(args))
            error(args.command, message)
            return code


def explain(err: Exception, options: dict) -> tuple[str, int]:
    """The one line the command line says for ``err``, and its exit code: 2 for wrong usage (an
    argument out of range: the API names it as `name`, said here as its option), 1 otherwise."""
    if isinstance(err, OutputExists):
        return f"{', '.join(err.paths)} {'exists' if len(err.paths) == 1 else 'exist'}; add --overwrite to replace", 1
    if isinstance(err, ImportError) and not str(err).startswith(("reading ", "writing ")):
        return f"this needs the Python package {err.name or str(err)}, which is not installed", 1
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror[0].lower()}{err.strerror[1:]}", 1
    message = str(err)
    named = re.match(r"`(\w+)`", message)
    if isinstance(err, (ValueError, TypeError)) and not isinstance(err, MIBFormatError) and named:
        if named[1] in options:
            message = f"--{named[1].replace('_', '-')}" + message[named.end() :]
        return message, 2
    return message, 1


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM (a scheduler, ``kill``) ends a command as Ctrl-C does: what it was writing is
    cleaned up (no partial archive; a recording cut to whole frames) before it exits."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt("terminated")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = ["main"]
