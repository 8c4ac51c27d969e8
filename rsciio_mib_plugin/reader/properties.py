"""``MIBProperties``: RosettaSciIO's view of an opened acquisition (:class:`.Acquisition`)."""

from __future__ import annotations

from .acquisition import Acquisition, open_acquisition


class MIBProperties:
    """Properties of a Merlin ``.mib`` file or buffer, parsed from its headers.

    The attribute names of RosettaSciIO's ``MIBProperties`` are kept
    (``path``, ``buffer``, ``merlin_size``, ``assembly_size``, ``raw``,
    ``dtype``, ``head_size``, ``number_of_frames_in_file``, ``exposure`` in ms,
    ``timestamp`` ...); ``header`` (the first :class:`FrameHeader`),
    ``geometry``, ``hdr`` (the parsed ``.hdr`` or ``None``) and
    ``counter_depth`` are added. They are a view of :attr:`acquisition`, the
    record the reader works from, made when the file is parsed.
    ``repr()`` is what ``print_info`` prints.
    """

    def __init__(self):
        self.acquisition: Acquisition | None = None
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
        self.header = None
        self.geometry = None
        self.hdr = None
        self.hdr_path = None
        self.source = None
        self.mpx_capture = False
        self.segments = ()
        self.series_gaps = []

    @classmethod
    def from_path(cls, path, series: bool = False, storage_options: dict | None = None) -> MIBProperties:
        """Parse a file, URL, file object, buffer or series (see :meth:`parse_file`)."""
        prop = cls()
        prop.parse_file(path, series=series, storage_options=storage_options)
        return prop

    @classmethod
    def of(cls, acquisition: Acquisition) -> MIBProperties:
        """The view of an opened acquisition."""
        prop = cls()
        prop._show(acquisition)
        return prop

    def parse_file(self, path, series: bool = False, storage_options: dict | None = None) -> None:
        """Open the acquisition (:func:`.open_acquisition`, which documents the arguments) and show it."""
        self._show(open_acquisition(path, series, storage_options))

    def _show(self, acq: Acquisition) -> None:
        header, geometry = acq.header, acq.geometry
        self.acquisition = acq
        for name in (
            "source", "segments", "header", "geometry", "hdr", "hdr_path", "trailing_bytes", "file_size", "path",
            "number_of_frames_in_file", "buffer", "mpx_capture", "raw", "dtype", "counter_depth", "dynamic_range",
            "exposure", "timestamp",
        ):  # fmt: skip
            setattr(self, name, getattr(acq, name))
        self.series_gaps = list(acq.series_gaps)
        self.merlin_size = geometry.shape
        self.head_size = header.header_bytes
        self.assembly_size = "single" if header.chips == 1 else "quad" if header.chips == 4 else f"{header.chips} chips"
        self.detector_geometry = header.layout
        self.gap = header.gap
        self.roi_rows = header.height if (not header.raw and header.height < header.width) else None

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
            f"exposure: {self.exposure} ms",
            f"timestamp: {self.timestamp}",
            f".hdr: {self.hdr_path if self.hdr_path else 'not found'}",
        ]
        if self.trailing_bytes:
            lines.append(f"Incomplete last frame: {self.trailing_bytes} bytes ignored")
        return "\n" + "\n".join(lines)
