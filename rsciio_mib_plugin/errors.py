"""Exceptions and warnings raised by the reader."""


class MIBFormatError(ValueError):
    """A ``.mib`` file, buffer or frame header is malformed.

    The message names the file, the frame index, the byte offset and the
    header field where the problem was found, what was found and what was
    expected.
    """


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
