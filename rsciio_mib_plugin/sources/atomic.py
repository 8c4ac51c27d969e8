"""Writing files safely, for every writer of the package.

A file or archive is written under a fresh, unpredictable name beside its
target, created exclusively (so nothing planted there, such as a symbolic
link, is written through), and renamed into place only once complete: a
reader never sees half a file, and a failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputExists


def temporary_beside(target: Path, directory: bool = False) -> Path:
    """A new empty file (or folder) with an unpredictable name beside ``target``."""
    target = Path(target)
    prefix, suffix = f".{target.stem}.partial-", target.suffix
    folder = target.parent if str(target.parent) else Path(".")
    if directory:
        return Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=folder))
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    os.close(fd)
    return Path(name)


def remove(path: Path) -> None:
    """Remove one of our own temporary outputs (a file or a folder)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def check_writable(target: Path) -> None:
    """Raise now the error writing ``target`` would raise later (no such folder, no permission, a
    folder in its place), by creating and removing a temporary file beside it."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a folder; give a file name to write")
    try:
        remove(temporary_beside(target))
    except FileNotFoundError:
        raise FileNotFoundError(f"{target}: no such folder {folder}") from None
    except OSError as err:
        raise type(err)(f"{target}: cannot write in {folder} ({err.strerror or err})") from None


def refuse_existing(*targets) -> None:
    """The error for outputs that exist and may not be replaced."""
    raise OutputExists(*targets)


def put_in_place(temp: Path, target: Path, overwrite: bool) -> None:
    """Rename the finished ``temp`` onto ``target``; an old target (with ``overwrite``) goes only after."""
    if not os.path.lexists(target):
        os.replace(temp, target)
        return
    if not overwrite:
        refuse_existing(target)
    if Path(target).is_dir() and not Path(target).is_symlink():  # a folder cannot be renamed over
        old = Path(target).with_name(f".{Path(target).name}.old-{os.urandom(4).hex()}")
        os.replace(target, old)
        os.replace(temp, target)
        remove(old)
    else:
        os.replace(temp, target)


def file_mode(path: Path) -> int:
    """The mode ``open(path, "wb")`` would give: an existing file's, else by the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def replacing(target, overwrite: bool = True, directory: bool = False) -> Iterator[Path]:
    """A temporary path to write ``target`` into, put in place when the block ends without error.

    Parameters
    ----------
    target : str or pathlib.Path
        The output.
    overwrite : bool
        Replace an existing ``target``; ``False`` raises :class:`FileExistsError`
        (checked before and again at the rename).
    directory : bool
        The output is a folder (a zarr store); the temporary one is created empty.
    """
    target = Path(target)
    if not overwrite and os.path.lexists(target):
        refuse_existing(target)
    temp = temporary_beside(target, directory)
    try:
        yield temp
        if not directory:
            os.chmod(temp, file_mode(target))
        put_in_place(temp, target, overwrite)
    except BaseException:
        remove(temp)
        raise


def create_new(path: Path, overwrite: bool) -> int:
    """A new file opened for writing, created exclusively: with ``overwrite`` an existing one
    (or a link) is removed first, never written through."""
    if overwrite and os.path.lexists(path) and not os.path.isdir(path):
        os.unlink(path)
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except FileExistsError:
        refuse_existing(path)
