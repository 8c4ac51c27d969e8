"""Every example in the README runs as written, from a folder of its own."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(\w*)\n(.*?)^```", README, re.S | re.M)
TREE = ("├", "│", "└", "...")


def _blocks(kind: str) -> list[str]:
    return [text for lang, text in BLOCKS if lang == kind]


def _run(args, cwd, **kwargs):
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("RSCIIO_MIB_PLUGIN_AUTOLOAD", None)
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=600, **kwargs)


def _command(line: str) -> list[str]:
    """``rsciio-mib ...`` as the installed entry point of this interpreter's environment."""
    words = shlex.split(line)
    assert words[0] == "rsciio-mib", line
    return [sys.executable, "-m", "rsciio_mib_plugin", *words[1:]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A folder where the first command's demo has run, as on a fresh clone (no ../shared)."""
    folder = tmp_path_factory.mktemp("readme")
    done = _run([sys.executable, "-m", "rsciio_mib_plugin", "demo"], folder)
    assert done.returncode == 0, done.stderr
    return folder, done.stdout


def test_readme_starts_with_the_two_commands():
    first, tests = _blocks("bash")[:2]
    assert README.index(first) < README.index("## Install")
    assert first.strip() == 'python3 -m venv .venv && .venv/bin/pip install -q ".[pyxem]" && .venv/bin/rsciio-mib demo'
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert tests.strip() in ci  # .ci/run runs exactly the README's test command
    assert "../shared" not in first


def test_first_command_prints_what_the_readme_shows(demo):
    folder, stdout = demo
    shown = next(text for lang, text in BLOCKS if lang == "" and text.startswith("wrote "))
    printed = stdout.splitlines()
    for line in shown.splitlines():
        if line.strip() and not line.lstrip().startswith(TREE):
            assert line in printed, line
    assert (folder / "rsciio-mib-demo" / "demo_preview.png").stat().st_size > 10_000


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_examples_run(demo, index):
    folder, _ = demo
    done = _run([sys.executable, "-c", _blocks("python")[index]], folder)
    assert done.returncode == 0, done.stderr


def test_console_examples_print_what_the_readme_shows(demo):
    folder, _ = demo
    for block in _blocks("console"):
        sessions = re.split(r"^\$ ", block, flags=re.M)[1:]
        for session in sessions:
            line, *expected = session.rstrip("\n").split("\n")
            done = _run(_command(line), folder)
            assert done.returncode == 0, (line, done.stderr)
            expected = [e for e in expected if e.strip()]
            printed = done.stdout.strip().splitlines()
            assert len(printed) == len(expected), (line, printed)
            for got, shown in zip(printed, expected):  # "..." ends what varies from run to run
                assert got.startswith(shown[:-3]) if shown.endswith("...") else got == shown, (got, shown)


def test_other_blocks_are_installs_or_signatures():
    for lang, text in BLOCKS:
        if lang == "bash":
            assert text.startswith(("python3 -m venv", "pip install")), text
        elif lang not in ("python", "console", ""):
            assert lang == "text" and "def " not in text, lang
