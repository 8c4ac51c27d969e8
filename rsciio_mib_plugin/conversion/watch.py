"""A watched folder: each acquisition converted once it is complete (``rsciio-mib convert --watch``).

An acquisition is one ``.mib`` file, or numbered files ``<prefix><digits>.mib``
that share one ``.hdr`` (a series; each with a ``.hdr`` of its own, they are
separate acquisitions). It is complete when its files hold the frames its
``.hdr`` announces ("Frames in Acquisition"), or when none of its files has
changed for ``settle`` seconds; a file still being written is never converted.
Its archives are written by :func:`.convert` (under a temporary name, renamed
when whole), so an archive that exists is complete: it is skipped, and a
watcher stopped and started again converts only what is left.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MIBFormatError
from ..format.hdr_file import FRAMES_IN_ACQUISITION, hdr_int
from ..reader.side_file import find_hdr, find_hdr_of_any, read_hdr
from ..sources.atomic import remove
from .archive import convert

#: Seconds a file must stay unchanged to count as complete when its ``.hdr`` gives no frame count.
SETTLE_SECONDS = 5.0
#: Seconds between looks at the folder.
POLL_SECONDS = 0.5


@dataclass
class Pending:
    """One acquisition of the watched folder and what was last seen of its files."""

    files: list[Path]
    series: bool
    state: tuple = ()
    since: float = field(default_factory=time.monotonic)

    @property
    def stem(self) -> str:
        return self.files[0].stem

    def look(self) -> bool:
        """Note the files' sizes and times; ``True`` when they changed since the last look."""
        try:
            state = tuple((f.stat().st_size, f.stat().st_mtime_ns) for f in self.files)
        except FileNotFoundError:
            state = ()
        changed = state != self.state
        if changed:
            self.state, self.since = state, time.monotonic()
        return changed

    def complete(self, settle: float) -> bool:
        """All frames the ``.hdr`` announces are there, or nothing changed for ``settle`` seconds."""
        if not self.state:
            return False
        if time.monotonic() - self.since >= settle:
            return True
        hdr_path = find_hdr_of_any(self.files)
        expected = hdr_int(read_hdr(hdr_path) if hdr_path else None, FRAMES_IN_ACQUISITION)
        return bool(expected) and self.frames() >= expected

    def frames(self) -> int:
        """Whole frames in the files so far (0 while the first frame header is not all there)."""
        from ..reader.acquisition import open_acquisition

        try:
            geometry = open_acquisition(self.files[0]).geometry
        except (OSError, MIBFormatError):
            return 0
        return sum(size // geometry.frame_bytes for size, _ in self.state)


def acquisitions(folder: Path) -> list[Pending]:
    """The acquisitions in ``folder``: single files, and numbered files sharing one ``.hdr`` as series."""
    mibs = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".mib" and not p.name.startswith("."))
    numbered: dict[str, list[Path]] = {}
    singles = []
    for path in mibs:
        prefix = path.stem.rstrip("0123456789")
        (numbered.setdefault(prefix, []) if prefix != path.stem else singles).append(path)
    found = [Pending([p], False) for p in singles]
    for files in numbered.values():
        files.sort(key=lambda p: int(re.search(r"(\d+)$", p.stem)[1]))
        if len(files) > 1 and sum(find_hdr(f) is not None for f in files) <= 1:
            found.append(Pending(files, True))
        else:
            found += [Pending([f], False) for f in files]
    return found


def _archived(output_dir: Path, stem: str, fmt: str) -> bool:
    """Whether the acquisition's archives exist (one, or one per counter): whole, as written."""
    return (output_dir / f"{stem}.{fmt}").exists() or any(output_dir.glob(f"{glob_escape(stem)}_counter*.{fmt}"))


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def watch_folder(
    folder,
    output_dir,
    *,
    settle: float = SETTLE_SECONDS,
    idle_exit: float | None = None,
    done=None,
    failed=None,
    poll: float = POLL_SECONDS,
    **convert_options,
) -> list[dict]:
    """Convert every acquisition in ``folder`` into ``output_dir`` once it is complete, until stopped.

    Parameters
    ----------
    folder : str or pathlib.Path
        The folder acquisitions are written into.
    output_dir : str or pathlib.Path
        Where the archives go (created if needed).
    settle : float
        Seconds without change after which an acquisition whose ``.hdr`` gives
        no frame count (or more than it holds) counts as complete.
    idle_exit : float, optional
        Stop once everything seen is converted (or failed) and nothing new came
        for this many seconds; default: watch until interrupted (Ctrl-C, SIGTERM).
    done : callable, optional
        ``done(report)`` for each archive, as soon as it is in place.
    failed : callable, optional
        ``failed(path, error)`` for an acquisition that cannot be converted; it
        is tried again only once its files change.
    poll : float
        Seconds between looks at the folder.
    **convert_options
        Keywords of :func:`.convert` (``format``, ``compression``, ``navigator``, ...).

    Returns
    -------
    list of dict
        The reports of the archives written (when ``idle_exit`` ends the watch).
    """
    for name, value in (("settle", settle), ("poll", poll), ("idle_exit", idle_exit)):
        if value is None and name == "idle_exit":
            continue
        least = 0.01 if name == "poll" else 0  # a poll of 0 would spin
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not least <= value < math.inf:
            raise ValueError(f"`{name}` must be a finite number of seconds (at least {least}), not {value!r}")
    folder, output_dir = Path(folder), Path(output_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder to watch")
    fmt = convert_options.get("format", "zspy")
    started, last_news = time.time(), time.monotonic()
    seen: dict[tuple, Pending] = {}
    finished: set[tuple] = set()
    failures: dict[tuple, tuple] = {}
    reports: list[dict] = []
    while True:
        waiting = False
        for found in acquisitions(folder):
            key = tuple(found.files)
            if key in finished:
                continue
            pending = seen.setdefault(key, found)
            if pending.look():
                last_news = time.monotonic()
            if _archived(output_dir, pending.stem, fmt):
                finished.add(key)
                continue
            if failures.get(key) == pending.state:
                continue
            if not pending.complete(settle):
                waiting = True
                continue
            _remove_stale_partials(output_dir, pending.stem, started)
            try:
                reports += convert(pending.files[0], output_dir, series=pending.series, done=done, **convert_options)
                finished.add(key)
            except (OSError, ValueError) as err:
                if str(err).startswith("`"):
                    raise  # a wrong option: the same for every acquisition
                failures[key] = pending.state
                if failed is not None:
                    failed(pending.files[0], err)
            last_news = time.monotonic()
        if idle_exit is not None and not waiting and time.monotonic() - last_news >= idle_exit:
            return reports
        time.sleep(poll)


def _remove_stale_partials(output_dir: Path, stem: str, started: float) -> None:
    """Temporaries of this acquisition's archives that a killed run left (``.<stem>.partial-*``,
    the names only our writer makes), older than this watcher: the conversion is redone."""
    if not output_dir.is_dir():
        return
    stem = glob_escape(stem)
    for path in [*output_dir.glob(f".{stem}.partial-*"), *output_dir.glob(f".{stem}_counter*.partial-*")]:
        try:
            if path.stat().st_mtime < started:
                remove(path)
        except FileNotFoundError:
            pass


__all__ = ["watch_folder"]
