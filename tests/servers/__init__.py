"""Servers the tests start as their own processes on 127.0.0.1, ended by their own ids."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

SERVERS = Path(__file__).parent  # the server scripts
START_SECONDS = 60  # a cold start on a busy machine


@contextlib.contextmanager
def running(argv: list, folder: Path, ready):
    """Run ``python argv...`` with its output in a log under ``folder``; yield ``(ready(log text), log)``
    once ``ready`` returns something other than ``None`` (within :data:`START_SECONDS`)."""
    log = folder / f"server-{time.monotonic_ns()}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, *map(str, argv)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_SECONDS
        while (found := ready(log.read_text())) is None:
            assert proc.poll() is None, f"{argv[0]} exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"{argv[0]} did not start within {START_SECONDS} s"
            time.sleep(0.05)
        yield found, log
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def printed_port(text: str) -> int | None:
    """The port a server of this folder prints on its first line, once that line is complete."""
    return int(text.split("\n", 1)[0]) if "\n" in text else None
