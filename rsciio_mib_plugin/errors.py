"""Exceptions and warnings raised by the reader."""


class MIBFormatError(ValueError):
    """A ``.mib`` file, buffer or frame header is malformed.

    The message names the file, the frame index, the byte offset and the
    header field where the problem was found, what was found and what was
    expected.
    """


class MissingPackage(ImportError):
    """An optional package a feature needs is not installed; the message is one sentence naming
    the extra that installs it, as a clone installs it (the package is not on PyPI)."""

    def __init__(self, what: str, package: str, extra: str):
        super().__init__(
            f"{what} needs {package}, which the '{extra}' extra installs "
            f'(pip install ".[{extra}]" in the rsciio_mib_plugin folder)',
            name=package,
        )


class OutputExists(FileExistsError):
    """An output exists and ``overwrite`` was not given; ``paths`` are the outputs."""

    def __init__(self, *paths):
        self.paths = [str(p) for p in paths]
        names = ", ".join(self.paths)
        super().__init__(f"{names} {'exists' if len(paths) == 1 else 'exist'}; pass overwrite=True to replace")


class MIBWarning(UserWarning):
    """Something was dropped or guessed while reading (frames, lines, side files)."""


class MerlinCommandError(RuntimeError):
    """The Merlin control port answered a request with a non-zero status.

    ``code`` is the status: 1 busy, 2 not recognised, 3 out of range
    (``None`` when the reply could not be read as one).
    """

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


def where(source: str, frame: int | None = None, offset: int | None = None) -> str:
    """Describe a position in a file for an error message."""
    text = str(source)
    if frame is not None:
        text += f", frame {frame}"
    if offset is not None:
        text += f" (byte offset {offset})"
    return text
