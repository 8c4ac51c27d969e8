"""Every frame header of a block checked against the first, vectorised (a few bytes per frame).

A frame out of step (a damaged or inserted byte) or of another kind is an error naming that
frame, not garbage pixels (docs/format.md §1, §2.1, §12).
"""

from __future__ import annotations

import numpy as np

from ..errors import MIBFormatError, where
from ..sources.source import Segment
from .geometry import Geometry
from .mpx import frame_prefix

_MAGIC = np.frombuffer(b"MQ1,", np.uint8)
_FIELD_NAMES = ("header length", "number of chips", "image width", "image height", "pixel type", "layout")


def check_headers(
    heads: np.ndarray, geometry: Geometry, name: str, frame: int, segment: Segment, in_file: bool = True
) -> None:
    """Check every frame header of a block against the first one, vectorised.

    ``heads`` holds each frame's bytes before its pixels (MPX prefix and
    header). Each must have the capture's ``MPX,`` prefix, start with
    ``MQ1,<frame number>,``, repeat the first header's fields 2-7 (header
    length, chips, width, height, pixel type, layout) byte for byte, and end
    with its MQ1A counter depth: a frame out of step (a damaged or inserted
    byte) or of another kind is an error naming that frame, not garbage
    pixels. Costs a few bytes per frame. ``in_file=False`` (live streams)
    leaves out the hint to read the frames before it with ``last_frame``.
    """
    bad = first_bad_header(heads, geometry, segment.prefix)
    if bad is None:
        return
    at = geometry.offset(frame + bad, segment.base, segment.prefix)
    message = _header_difference(heads[bad], geometry, segment.prefix)
    if not in_file:
        message = message.split("; the frames before it", 1)[0]
    raise MIBFormatError(f"{where(name, frame + bad, at)}: {message}")


def first_bad_header(heads: np.ndarray, geometry: Geometry, prefix: int) -> int | None:
    """Index of the first row of ``heads`` that fails :func:`check_headers`, or ``None``."""
    n = heads.shape[0]
    good = np.ones(n, bool)
    if prefix:
        expected = np.frombuffer(frame_prefix(geometry.frame_bytes), np.uint8)
        good &= np.all(heads[:, :prefix] == expected, axis=1)
    h = heads[:, prefix:]
    good &= np.all(h[:, :4] == _MAGIC, axis=1)
    sig = np.frombuffer(geometry.signature, np.uint8)
    if sig.size:
        # The frame number has 6 digits until frame 999999, then more (§2.1).
        commas = h[:, 5:17] == ord(",")
        good &= commas.any(axis=1)
        start = 5 + np.argmax(commas, axis=1)
        idx = np.minimum(start[:, None] + np.arange(sig.size), h.shape[1] - 1)
        good &= np.all(np.take_along_axis(h, idx, axis=1) == sig, axis=1)
    tail = np.frombuffer(geometry.depth_field, np.uint8)
    if tail.size:
        text = h[:, : geometry.header_bytes]
        last = text.shape[1] - 1 - np.argmax(text[:, ::-1] != 0, axis=1)
        idx = np.maximum(last[:, None] - tail.size + 1 + np.arange(tail.size), 0)
        good &= np.all(np.take_along_axis(text, idx, axis=1) == tail, axis=1)
    return None if good.all() else int(np.argmin(good))


def _header_difference(head: np.ndarray, geometry: Geometry, prefix: int) -> str:
    """Say which field of a frame header differs from the first frame's."""
    raw = bytes(head)
    if prefix and raw[:prefix] != frame_prefix(geometry.frame_bytes):
        return (
            f"MPX message prefix is {raw[:prefix]!r}, expected {frame_prefix(geometry.frame_bytes)!r} "
            "(every frame message has the same length); the frames before it can be read with last_frame"
        )
    found = raw[prefix:].split(b"\x00", 1)[0].decode("latin-1").split(",")
    expected = geometry.signature.decode("ascii").strip(",").split(",")
    if found[0] == "MQ1" and len(found) > 7:
        for i, (a, b) in enumerate(zip(expected, found[2:8])):
            if a != b:
                return (
                    f"{_FIELD_NAMES[i]} (field {i + 2}) is {b!r} but the first frame header says {a!r}; "
                    "frames of one file must all be alike"
                )
        depth = geometry.depth_field.decode("ascii").strip(",")
        if depth and found[-2 if found[-1] == "" else -1] != depth:
            return (
                f"counter depth (MQ1A) is {found[-2 if found[-1] == '' else -1]!r} but the first frame header "
                f"says {depth!r}; frames of one file must all be alike"
            )
    return (
        f"frame header out of step: expected 'MQ1,<frame number>,{expected[0]},' found {raw[prefix : prefix + 16]!r}; "
        "the frames before it can be read with last_frame"
    )
