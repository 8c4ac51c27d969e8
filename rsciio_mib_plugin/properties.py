"""``MIBProperties``: everything known about a file before its pixels are read."""

from __future__ import annotations

import warnings

from .errors import MIBFormatError, MIBWarning, where
from .hdr import COUNTER_DEPTH, find_hdr, hdr_int, read_hdr
from .header import FrameHeader
from .layout import Geometry, count_frames, frame_geometry
from .read import Source, open_source, read_header_at

_DYNAMIC_RANGE = {"U01": "1-bit", "U08": "1 or 6-bit", "U16": "12-bit", "U32": "24-bit", "U64": "64-bit"}


class MIBProperties:
    """Properties of a Merlin ``.mib`` file or buffer, parsed from its headers.

    The attribute names of RosettaSciIO's ``MIBProperties`` are kept
    (``path``, ``buffer``, ``merlin_size``, ``assembly_size``, ``raw``,
    ``dtype``, ``head_size``, ``number_of_frames_in_file``, ``exposure`` in ms,
    ``timestamp`` ...); ``header`` (the first :class:`FrameHeader`),
    ``geometry``, ``hdr`` (the parsed ``.hdr`` or ``None``) and
    ``counter_depth`` are added. ``repr()`` is what ``print_info`` prints.
    """

    def __init__(self):
        self.path = None
        self.buffer = False
        self.merlin_size = ()
        self.assembly_size = None
        self.raw = False
        self.dynamic_range = ""
        self.packed = None
        self.dtype = None
        self.head_size = None
        self.offset = 0
        self.navigation_shape = ()
        self.xy = None
        self.number_of_frames_in_file = None
        self.gap = None
        self.quad_scale = None
        self.detector_geometry = ""
        self.frame_double = None
        self.roi_rows = None
        self.exposure = None
        self.timestamp = ""
        self.file_size = None
        self.counter_depth = None
        self.trailing_bytes = 0
        self.header: FrameHeader | None = None
        self.geometry: Geometry | None = None
        self.hdr: dict | None = None
        self.hdr_path = None
        self.source: Source | None = None

    @classmethod
    def from_path(cls, path) -> "MIBProperties":
        """Parse a file or buffer (see :meth:`parse_file`)."""
        prop = cls()
        prop.parse_file(path)
        return prop

    def parse_file(self, path) -> None:
        """Read the first frame header, the ``.hdr`` and the file size.

        Parameters
        ----------
        path : str, pathlib.Path or bytes-like
            The ``.mib`` file or a buffer with its bytes.

        Raises
        ------
        MIBFormatError
            When the first header is malformed, the file holds no complete
            frame, or the last frame's header disagrees with the first.
        """
        source = open_source(path)
        header = read_header_at(source, 0, 0)
        hdr = None
        if source.path is not None:
            self.hdr_path = find_hdr(source.path)
            hdr = read_hdr(self.hdr_path) if self.hdr_path else None
        geometry = frame_geometry(header, hdr_int(hdr, COUNTER_DEPTH), source.name)
        n_frames, rest = count_frames(source.size, geometry, source.name)
        if n_frames > 1:
            _check_same(header, read_header_at(source, (n_frames - 1) * geometry.frame_bytes, n_frames - 1), source, n_frames - 1, geometry)
        if rest:
            warnings.warn(
                f"{source.name}: the last {rest} bytes are an incomplete frame "
                f"({geometry.frame_bytes} bytes per frame) and are ignored",
                MIBWarning,
                stacklevel=4,
            )

        self.source, self.header, self.geometry, self.hdr = source, header, geometry, hdr
        self.path = source.path
        self.buffer = source.buffer is not None
        self.file_size = source.size
        self.trailing_bytes = rest
        self.merlin_size = geometry.shape
        self.head_size = header.header_bytes
        self.raw = header.raw
        self.dtype = geometry.dtype.name
        self.counter_depth = geometry.depth
        self.dynamic_range = f"{geometry.depth}-bit" if header.raw else _DYNAMIC_RANGE[header.pixel_type]
        if header.counter_depth is not None and not header.raw:
            self.dynamic_range = f"{header.counter_depth}-bit"
        self.assembly_size = "single" if header.chips == 1 else "quad" if header.chips == 4 else f"{header.chips} chips"
        self.detector_geometry = header.layout
        self.gap = header.gap
        self.roi_rows = header.height if (not header.raw and header.height < header.width) else None
        self.number_of_frames_in_file = n_frames
        self.exposure = header.exposure_ms
        self.timestamp = header.utc_timestamp or header.timestamp

    def as_dict(self) -> dict:
        """Plain values for ``original_metadata`` (what the built-in stores)."""
        keys = (
            "path", "buffer", "merlin_size", "assembly_size", "raw", "dynamic_range", "dtype",
            "head_size", "offset", "navigation_shape", "xy", "number_of_frames_in_file", "gap",
            "detector_geometry", "roi_rows", "exposure", "timestamp", "file_size", "counter_depth",
        )
        out = {}
        for key in keys:
            value = getattr(self, key)
            if isinstance(value, tuple):
                value = list(value)
            if value is not None:
                out[key] = value
        return out

    def __repr__(self) -> str:
        if self.header is None:
            return "MIBProperties(not parsed)"
        lines = [
            f"Path: {self.path}" if not self.buffer else "Data is from a buffer",
            f"Chip configuration is {self.assembly_size} ({self.detector_geometry})",
            f"Data size {self.merlin_size}",
            f"Data is RAW ({self.counter_depth}-bit R64, decoded)" if self.raw else "Data is processed",
            f"Data type: {self.dtype}",
            f"Dynamic range: {self.dynamic_range}",
            f"Header size: {self.head_size} bytes",
            f"Frame size: {self.geometry.frame_bytes} bytes",
            f"Number of frames in the file/buffer: {self.number_of_frames_in_file}",
            f"Number of frames to be read: {self.xy}",
            f"Navigation shape (array order): {self.navigation_shape}",
            f"exposure: {self.exposure} ms",
            f"timestamp: {self.timestamp}",
            f".hdr: {self.hdr_path if self.hdr_path else 'not found'}",
        ]
        if self.trailing_bytes:
            lines.append(f"Incomplete last frame: {self.trailing_bytes} bytes ignored")
        return "\n" + "\n".join(lines)


def _check_same(first: FrameHeader, other: FrameHeader, source: Source, frame: int, geometry: Geometry) -> None:
    """A frame header later in the file must describe the same frames."""
    for name in ("header_bytes", "width", "height", "pixel_type", "chips"):
        a, b = getattr(first, name), getattr(other, name)
        if a != b:
            raise MIBFormatError(
                f"{where(source.name, frame, frame * geometry.frame_bytes)}: {name} is {b!r} "
                f"but the first frame header says {a!r}; frames of one file must all be alike"
            )
