"""Exceptions and warnings raised by the reader."""


class MIBFormatError(ValueError):
    """A ``.mib`` file, buffer or frame header is malformed.

    The message names the file, the frame index, the byte offset and the
    header field where the problem was found, what was found and what was
    expected.
    """


class MIBWarning(UserWarning):
    """Something was dropped or guessed while reading (frames, lines, side files)."""


def where(source: str, frame: int | None = None, offset: int | None = None) -> str:
    """Describe a position in a file for an error message."""
    text = str(source)
    if frame is not None:
        text += f", frame {frame}"
    if offset is not None:
        text += f" (byte offset {offset})"
    return text
