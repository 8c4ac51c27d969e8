"""An acquisition opened once: files (or a series, URL, file object, buffer), first header, ``.hdr``."""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import MIBFormatError, MIBWarning, where
from ..format import mpx
from ..format.frame_header import FrameHeader, frame_numbers, read_header, reading_from
from ..format.geometry import Geometry, count_frames, frame_geometry
from ..format.hdr_file import (
    COUNTER_DEPTH,
    FRAMES_IN_ACQUISITION,
    check_numbers,
    hdr_int,
    parse_hdr_text,
)
from ..sources.source import Remote, Segment, Source, check_path, is_url, open_source, segment_source
from .frames import read_headers
from .placement import Placement, place
from .side_file import find_hdr_of_any, read_hdr

_DYNAMIC_RANGE = {"U01": "1-bit", "U08": "1 or 6-bit", "U16": "12-bit", "U32": "24-bit", "U64": "64-bit"}


@dataclass(frozen=True)
class Acquisition:
    """An acquisition opened once: its files (or buffer), first frame header, frame geometry and
    ``.hdr``. Everything the reader knows before it reads pixels; never changed after."""

    source: Source
    segments: tuple[Segment, ...]
    header: FrameHeader
    geometry: Geometry
    hdr: dict | None
    hdr_path: object  # a Path, a URL, "in-band HDR message", or None
    series_gaps: tuple[dict, ...]
    placement: Placement
    trailing_bytes: int
    file_size: int
    path: object  # what RosettaSciIO's MIBProperties.path holds: the path, URL, or list of paths

    @property
    def number_of_frames_in_file(self) -> int:
        return sum(s.count for s in self.segments)

    @property
    def buffer(self) -> bool:
        return self.source.buffer is not None

    @property
    def mpx_capture(self) -> bool:
        return self.source.prefix > 0

    @property
    def raw(self) -> bool:
        return self.header.raw

    @property
    def dtype(self) -> str:
        return self.geometry.dtype.name

    @property
    def counter_depth(self) -> int | None:
        return self.geometry.depth

    @property
    def dynamic_range(self) -> str:
        header = self.header
        if header.raw:
            return f"{self.geometry.depth}-bit"
        if header.counter_depth is not None:
            return f"{header.counter_depth}-bit"
        return _DYNAMIC_RANGE[header.pixel_type]

    @property
    def exposure(self) -> float:
        """ms."""
        return self.header.exposure_ms

    @property
    def timestamp(self) -> str:
        return self.header.utc_timestamp or self.header.timestamp


def open_acquisition(path, series: bool = False, storage_options: dict | None = None) -> Acquisition:
    """Open an acquisition: its first frame header, the ``.hdr`` and the size of each file.

    Parameters
    ----------
    path : str, pathlib.Path, URL, file object, bytes-like, or a list of paths
        The ``.mib`` file (a local path, an fsspec URL such as
        ``s3://bucket/scan.mib``, or an open binary file), a buffer with
        its bytes, or the files of a multi-file acquisition.
    series : bool
        Also gather the numbered siblings ``<prefix><digits>.mib`` of
        ``path`` and read them as one acquisition (local folders only).
    storage_options : dict, optional
        Passed to fsspec for a URL (credentials, endpoint, ...).

    Raises
    ------
    MIBFormatError
        When the first header is malformed, a file holds no complete
        frame, or a later frame header disagrees with the first.
    """
    if is_url(path) or hasattr(path, "seek") or storage_options:
        return _open_remote(path, series, storage_options)
    if not isinstance(path, (str, os.PathLike, bytes, bytearray, memoryview, list, tuple)):
        raise TypeError(
            "`path` must be a str, pathlib.Path, URL, open binary file, bytes-like buffer or list of paths, "
            f"not {type(path).__name__}"
        )
    if isinstance(path, (list, tuple)):
        if not path:
            raise ValueError("`path` is an empty list of files")
        paths = [os.fspath(p) for p in path]
    elif series and not isinstance(path, (bytes, bytearray, memoryview)):
        paths = find_series(path)
    else:
        paths = [path]
    hdr = hdr_path = None
    first_path = paths[0]
    if not isinstance(first_path, (bytes, bytearray, memoryview)):
        main = check_path(path if not isinstance(path, (list, tuple)) else first_path)
        candidates = [main]
        if len(paths) > 1:  # a series may have one .hdr, named for any of its files
            prefix = _series_prefix(main)
            candidates += [prefix + ".mib", prefix.rstrip("_-") + ".mib", *sorted(map(os.fspath, paths))]
        hdr_path = find_hdr_of_any(candidates)
        hdr = read_hdr(hdr_path) if hdr_path else None
    return _open_files(paths, hdr, hdr_path)


def _open_remote(path, series: bool, storage_options: dict | None) -> Acquisition:
    """A URL or file object: the ``.hdr`` beside a URL is fetched once (no folder listing);
    beside a file object opened from a local path, it is looked up as for that path."""
    if series:
        raise ValueError("`series` gathers numbered files from a local folder; list the URLs instead")
    source = open_source(path, storage_options)
    hdr = hdr_path = None
    if isinstance(source.path, Remote):
        hdr_url = source.path.sibling(".hdr")
        hdr = read_hdr(hdr_url)
        hdr_path = str(hdr_url) if hdr else None
    elif os.path.isfile(source.name):  # a file object opened from a local path: its .hdr beside it
        hdr_path = find_hdr_of_any([source.name])
        hdr = read_hdr(hdr_path) if hdr_path else None
    return _open_files([source.path], hdr, hdr_path)


def _open_files(paths: list, hdr: dict | None, hdr_path) -> Acquisition:
    depth = hdr_int(hdr, COUNTER_DEPTH)
    files = sorted((_scan_file(p, depth) for p in paths), key=lambda f: f[1].sequence)
    source, header, geometry, n_frames, rest, in_band, _ = files[0]
    if in_band is not None:
        # A capture's HDR message is its .hdr (docs/format.md §12).
        hdr = parse_hdr_text(in_band) or hdr
        hdr_path = "in-band HDR message"
        check_numbers(hdr or {}, f"{source.name} (in-band HDR message)")
    for other in files[1:]:
        _check_same(header, other[1], other[0], 0, geometry)
    if hdr is not None and depth is not None and header.counter_depth is not None and depth != header.counter_depth:
        warnings.warn(
            f"{hdr_path}: 'Counter Depth' is {depth} but the frame headers say "
            f"{header.counter_depth}; using the frame headers",
            MIBWarning,
            stacklevel=4,
        )
    segments, first, gaps = [], 0, []
    for i, (src, head, _, count, tail, _, _) in enumerate(files):
        if i and head.sequence != files[i - 1][6] + 1:
            gaps.append({"file": src.name, "first_frame_number": head.sequence, "expected": files[i - 1][6] + 1})
        # Absolute: a lazy array is computed later, maybe after the working folder changed.
        where_ = os.path.abspath(src.path) if isinstance(src.path, str) else src.path
        segments.append(Segment(where_, first, count, src.base, src.prefix))
        first += count
        if tail:
            what = "a cut-off MPX message" if src.prefix else "an incomplete frame"
            warnings.warn(
                f"{src.name}: the last {tail} bytes are {what} "
                f"({geometry.frame_bytes} bytes per frame) and are ignored",
                MIBWarning,
                stacklevel=4,
            )

    segments = tuple(segments)
    frames_stated = hdr_int(hdr, FRAMES_IN_ACQUISITION)
    if source.remote:
        # A URL opens with three requests and its last header unread: frames can only be missing
        # where the .hdr states more than there are (lost, or an interrupted acquisition).
        suspect = bool(frames_stated) and first < frames_stated
    else:
        counts_up = all(f[6] - f[1].sequence == f[3] - 1 for f in files) and not gaps
        suspect = not counts_up or (header.sequence != 1 and bool(frames_stated))
    if not suspect:  # every frame where it is stored
        placement = Placement(first, first_number=header.sequence)
    else:  # frames lost, repeated or out of order somewhere
        numbers = np.concatenate([_stored_numbers(_source_of(source, s), geometry, s.count) for s in segments])
        placement = place(numbers, frames_stated)
    return Acquisition(
        source=source,
        segments=segments,
        placement=placement,
        header=header,
        geometry=geometry,
        hdr=hdr,
        hdr_path=hdr_path,
        series_gaps=tuple(gaps),
        trailing_bytes=sum(f[4] for f in files),
        file_size=sum(f[0].size for f in files),
        path=[f[0].path for f in files] if len(files) > 1 else (str(source.path) if source.remote else source.path),
    )


def _stored_numbers(source: Source, geometry: Geometry, count: int) -> np.ndarray:
    """The frame number of every stored frame of one file.

    Frames are lost in runs, so the numbers are found by bisection: where the numbers at both
    ends of a stretch of frames differ by its length, they count up in between, and only the
    stretches holding a jump are split. A few losses in 16,384 frames cost about 45 header reads
    instead of 16,384. Numbers that fall back (repeated, out of order) are all read.
    """
    known: dict[int, int] = {}

    def number(i: int) -> int:
        if i not in known:
            known[i] = int(frame_numbers(read_headers(source, geometry, i, 1))[0])
        return known[i]

    numbers = np.empty(count, np.int64)
    stretches = [(0, count - 1)]
    while stretches:
        a, b = stretches.pop()
        na, nb = number(a), number(b)
        if nb - na == b - a:
            numbers[a : b + 1] = np.arange(na, nb + 1)
        elif nb - na < b - a or na < 0 or nb < 0:  # not counting up in between: read every one
            return frame_numbers(read_headers(source, geometry, 0, count))
        elif b == a + 1:
            numbers[a], numbers[b] = na, nb
        else:
            stretches += [(a, (a + b) // 2), ((a + b) // 2, b)]
    return numbers


def _source_of(source: Source, segment: Segment) -> Source:
    """The source holding ``segment``: the one opened (a buffer, URL or file object) or its file."""
    return source if segment.path == source.path else segment_source(segment)


def _scan_file(path, hdr_depth: int | None):
    """First header, geometry and frame count of one file; checks its last header.

    Returns ``(source, header, geometry, n_frames, trailing bytes, in-band hdr text, last frame number)``.
    """
    source = open_source(path)
    hdr_text = None
    if source.pread(0, 4) == mpx.MAGIC:
        capture = mpx.locate(source.pread, source.size, source.name)
        source = dataclasses.replace(source, base=capture.base, prefix=mpx.PREFIX)
        hdr_text = capture.hdr_text
    header = read_header_at(source, source.base, 0)
    if hdr_text is not None and header.counter_depth is None:
        hdr_depth = hdr_depth or hdr_int(parse_hdr_text(hdr_text), COUNTER_DEPTH)
    geometry = frame_geometry(header, hdr_depth, source.name)
    if source.prefix and capture.frame_message_bytes != geometry.frame_bytes:
        raise MIBFormatError(
            f"{where(source.name, 0, source.base)}: the MPX message holds {capture.frame_message_bytes} "
            f"bytes but the frame header describes {geometry.frame_bytes}"
        )
    n_frames, rest = count_frames(source.size - source.base + source.prefix, geometry, source.name, source.prefix)
    # Remote: opening costs three requests (size, first 64 KiB, .hdr); every frame
    # header is checked as its block is read anyway.
    last_number = header.sequence + n_frames - 1  # unknown for a URL: taken as counting up
    if n_frames > 1 and not source.remote:
        last = read_header_at(source, geometry.offset(n_frames - 1, source.base, source.prefix), n_frames - 1)
        _check_same(header, last, source, n_frames - 1, geometry)
        last_number = last.sequence
    return source, header, geometry, n_frames, rest, hdr_text, last_number


def find_series(path) -> list[str]:
    """The numbered files ``<prefix><digits>.mib`` of the acquisition ``path`` belongs to.

    ``path`` itself is always one of them, with or without digits of its own
    (``scan.mib`` beside ``scan1.mib``, ``scan2.mib``). The folder is listed once.
    """
    path = check_path(path)
    prefix = _series_prefix(path)
    folder, base = os.path.split(prefix)
    suffix = os.path.splitext(path)[1]
    pattern = re.compile(re.escape(base) + r"\d+" + re.escape(suffix) + "$")
    found = {os.path.join(folder, f) for f in os.listdir(folder or ".") if pattern.match(f)}
    found.discard(os.path.join(folder, os.path.basename(path)))
    return [path, *sorted(found)]


def _series_prefix(path: str) -> str:
    """``/a/scan_0003.mib`` -> ``/a/scan_``: the name without its trailing digits."""
    stem = os.path.splitext(path)[0]
    return stem.rstrip("0123456789")


def read_header_at(source: Source, offset: int, frame: int) -> FrameHeader:
    """Parse the frame header that starts at ``offset``."""
    return read_header(reading_from(source.pread, offset), source.name, frame, offset)[0]


def _check_same(first: FrameHeader, other: FrameHeader, source: Source, frame: int, geometry: Geometry) -> None:
    """A frame header later in the file must describe the same frames."""
    for name in ("header_bytes", "width", "height", "pixel_type", "chips"):
        a, b = getattr(first, name), getattr(other, name)
        if a != b:
            raise MIBFormatError(
                f"{where(source.name, frame, geometry.offset(frame, source.base, source.prefix))}: {name} is {b!r} "
                f"but the first frame header says {a!r}; frames of one file must all be alike"
            )
