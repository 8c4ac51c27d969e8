"""Progress bars, one kind for every command and reader: tqdm on stderr, only when wanted."""

from __future__ import annotations

import contextlib
import sys


def wanted(show: bool | None) -> bool:
    """``show``, or for ``None``: HyperSpy's ``show_progressbar`` preference where HyperSpy is in
    use, else whether stderr is a terminal (bars flood logs)."""
    if show is not None:
        return bool(show)
    if "hyperspy" in sys.modules:
        try:
            from hyperspy.defaults_parser import preferences

            return bool(preferences.General.show_progressbar)
        except Exception:  # a HyperSpy without this preference
            return False
    return sys.stderr.isatty()


def progress_bar(show: bool | None, total: int | None, unit: str, desc: str):
    """A tqdm bar on stderr counting ``unit`` (``"B"``: bytes, shown in kB, MB, GB as every report
    of the package counts them), or ``None``."""
    if not wanted(show):
        return None
    from tqdm.auto import tqdm

    scale = {"unit_scale": True, "unit_divisor": 1000} if unit == "B" else {}
    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, **scale)


def dask_progress(show: bool | None):
    """dask's progress bar on stderr around the computations inside, or nothing."""
    if not wanted(show):
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(out=sys.stderr)
