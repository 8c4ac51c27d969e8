"""The ``rsciio-mib`` command line.

Exit codes: 0 success, 1 a file could not be read or written, 2 wrong usage.
Errors are one line on stderr; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import warnings

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
        except ImportError as err:
            if args.debug:
                raise
            error(args.command, f"{err}; install it with: pip install {err.name or 'the missing module'}")
        except (OSError, ValueError, TypeError, RuntimeError) as err:
            if args.debug:
                raise
            error(args.command, str(err))
        except KeyboardInterrupt:
            error(args.command, "interrupted")
            return 130
    return 1


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
