"""The RosettaSciIO "quantumdetector" API, composed from the stages of the reader."""

from __future__ import annotations

import sys
import warnings

import numpy as np

from . import _docstrings as doc
from .errors import MIBFormatError, MIBWarning
from .header import header_exposure_ms, header_timestamp, parse_evidence
from .properties import MIBProperties
from .read import fetch_all, lazy_array, memmap_frames, read_headers, read_planned, read_transformed
from .scan import Evidence, ScanPlan, plan_scan
from .signal import axes, metadata, original_metadata
from .source import is_reference
from .transform import check_transform

#: Frames whose headers are examined for the scan shape (timestamps,
#: exposures, counter fields).
EVIDENCE_FRAMES = 16384


def read_evidence(prop: MIBProperties, count: int = EVIDENCE_FRAMES) -> Evidence:
    """Timestamps, exposures and counter fields of the first ``count`` frames."""
    count = min(count, EVIDENCE_FRAMES, prop.segments[0].count if prop.segments else prop.number_of_frames_in_file)
    times, exposures, counters = parse_evidence(read_headers(prop.source, prop.geometry, 0, count))
    return Evidence(times_ns=times, exposures_ms=exposures, counters=counters)


def _plans(
    prop: MIBProperties, navigation_shape, first_frame, last_frame, counters, infer=True, sync_offset=0
) -> list[ScanPlan]:
    plans = plan_scan(
        prop.number_of_frames_in_file,
        first_frame,
        last_frame,
        navigation_shape,
        prop.hdr,
        lambda count: read_evidence(prop, count),
        counters,
        infer,
        sync_offset,
    )
    for plan in plans:
        for message in plan.messages:
            warnings.warn(f"{prop.source.name}: {message}", MIBWarning, stacklevel=4)
    prop.navigation_shape = plans[0].shape
    prop.xy = plans[0].count
    return plans


def _check_mmap_mode(mmap_mode, lazy: bool) -> str:
    if mmap_mode is None:
        return "r" if lazy else "c"
    if mmap_mode in ("r+", "readwrite"):
        warnings.warn(
            "mmap_mode='r+': changes to the returned memory map are written to the file",
            MIBWarning,
            stacklevel=4,
        )
    elif mmap_mode not in ("r", "c", "readonly", "copyonwrite"):
        raise ValueError(
            f"`mmap_mode`={mmap_mode!r} is not allowed: use 'r' or 'c' ('r+' writes back "
            "to the file; 'w+' would overwrite it)"
        )
    return mmap_mode


def _warn_distributed(distributed, function: str) -> None:
    """Warn as RosettaSciIO does when ``distributed`` is passed at all (deprecated since its 0.8)."""
    if distributed is None:
        return
    from rsciio.exceptions import VisibleDeprecationWarning

    warnings.warn(
        "Argument `distributed` is deprecated and has been removed. To avoid this warning, please do not use "
        f"`distributed`. See the documentation of `{function}()` for more details. Distributed memory mapping "
        "is now supported in the default implementation.",
        VisibleDeprecationWarning,
        stacklevel=3,
    )


def _show_progressbar(value) -> bool:
    """``None`` follows HyperSpy's ``show_progressbar`` preference when HyperSpy is in use."""
    if value is not None:
        return bool(value)
    if "hyperspy" not in sys.modules:
        return False
    try:
        from hyperspy.defaults_parser import preferences

        return bool(preferences.General.show_progressbar)
    except Exception:  # a HyperSpy without this preference
        return False


def _load(
    path,
    *,
    lazy=False,
    chunks="auto",
    mmap_mode=None,
    navigation_shape=None,
    first_frame=None,
    last_frame=None,
    mib_prop=None,
    return_headers=False,
    print_info=False,
    return_mmap=False,
    series=False,
    counters=None,
    show_progressbar=None,
    infer=True,
    flip=False,
    quad_gap=None,
    bin_signal=1,
    bin_navigation=1,
    sync_offset=0,
    storage_options=None,
):
    """Read every dataset of a file: ``([data, ...], prop, [plan, ...], [transform, ...])``.

    ``flip`` reverses the rows while reading (eager and lazy reads only).
    Frames are selected and offset, then shaped, then gapped and binned.
    """
    prop = mib_prop
    if prop is None:
        prop = MIBProperties.from_path(path, series=series, storage_options=storage_options)
    if not isinstance(prop, MIBProperties) or prop.header is None:
        raise TypeError("`mib_prop` must be a parsed MIBProperties (MIBProperties.from_path(path))")
    if lazy and prop.buffer:
        raise ValueError("Loading a memory buffer lazily is not supported: pass a file path, or lazy=False")
    if return_headers and not return_mmap:
        raise ValueError("`return_headers=True` needs `return_mmap=True`")
    if return_mmap and len(prop.segments) > 1:
        raise ValueError("a memory map covers one file: use return_mmap=False to read a multi-file series")
    mode = _check_mmap_mode(mmap_mode, lazy)
    plans = _plans(prop, navigation_shape, first_frame, last_frame, counters, infer, sync_offset)
    geometry, source = prop.geometry, prop.source
    transforms = [
        check_transform(quad_gap, bin_signal, bin_navigation, geometry, plan.shape, prop.source.name) for plan in plans
    ]
    if print_info:
        print(prop)  # noqa: T201
    out = []
    for plan, transform in zip(plans, transforms):
        if return_mmap:
            if not transform.identity or plan.blank:
                raise ValueError(
                    "a memory map shows the file as it is: quad_gap, bin_signal, bin_navigation and a negative "
                    "sync_offset need return_mmap=False"
                )
            if source.remote:  # no memory map of a URL or file object: its bytes, fetched once
                source = fetch_all(source)
            frames = memmap_frames(source, geometry, prop.number_of_frames_in_file, plan, mode)
            out.append((frames["data"], frames["header"]) if return_headers else frames["data"])
        elif lazy:
            out.append(lazy_array(prop.segments, geometry, plan, chunks, flip, transform))
        elif transform.identity:
            progress = _show_progressbar(show_progressbar)
            out.append(read_planned(source, prop.segments, geometry, plan, show_progressbar=progress, flip=flip))
        else:
            out.append(read_transformed(source, prop.segments, geometry, plan, transform, flip=flip))
    return out, prop, plans, transforms


@doc.fill
def load_mib_data(
    path,
    lazy: bool = False,
    chunks="auto",
    mmap_mode: str | None = None,
    navigation_shape: tuple[int, ...] | None = None,
    first_frame: int | None = None,
    last_frame: int | None = None,
    distributed: bool | None = None,
    mib_prop: MIBProperties | None = None,
    return_headers: bool = False,
    print_info: bool = False,
    return_mmap: bool = True,
    *,
    series: bool = False,
    counters: str | None = None,
    show_progressbar: bool | None = None,
    quad_gap: int | None = None,
    bin_signal: int = 1,
    bin_navigation: int = 1,
    sync_offset: int = 0,
    storage_options: dict | None = None,
):
    """Load the frames of a Merlin ``.mib`` file or buffer as an array.

    The array is in **file order** (row 0 is the first row stored, which the
    Merlin software shows at the bottom); :func:`file_reader` flips it.

    Parameters
    ----------
    {PATH}
    {LAZY}
    {CHUNKS}
    {MMAP_MODE}
    {NAVIGATION_SHAPE_DATA}
    {FIRST_LAST_FRAME}
    {DISTRIBUTED}
    mib_prop : MIBProperties, optional
        Properties parsed earlier with :meth:`MIBProperties.from_path`.
    return_headers : bool, default=False
        Also return the frame headers (``S<n>`` bytes shaped like the scan);
        needs ``return_mmap=True``.
    {PRINT_INFO}
    return_mmap : bool, default=True
        Return a :class:`numpy.memmap` (a read-only view for buffers) of the
        pixels in the file's own big-endian dtype, without reading them.
        For RAW files it holds the undecoded 64-bit words, shaped
        ``(*scan, words)``. ``False`` reads (or, lazily, maps) decoded,
        native-endian pixels.
    {SERIES}
    {COUNTERS}
    {SHOW_PROGRESSBAR}
    {GEOMETRY}
    {STORAGE_OPTIONS}

    Returns
    -------
    numpy.ndarray, numpy.memmap or dask.array.Array, or a list of them
        Shaped ``(*scan, rows, cols)``; with ``return_headers`` a tuple
        ``(data, headers)``. When the frames are split by counter, a list
        with one entry per counter.

    Raises
    ------
    MIBFormatError
        When the file is malformed.
    """
    _warn_distributed(distributed, "load_mib_data")
    data, _, _, _ = _load(
        path,
        lazy=lazy,
        chunks=chunks,
        mmap_mode=mmap_mode,
        navigation_shape=navigation_shape,
        first_frame=first_frame,
        last_frame=last_frame,
        mib_prop=mib_prop,
        return_headers=return_headers,
        print_info=print_info,
        return_mmap=return_mmap,
        series=series,
        counters=counters,
        show_progressbar=show_progressbar,
        infer=False,
        quad_gap=quad_gap,
        bin_signal=bin_signal,
        bin_navigation=bin_navigation,
        sync_offset=sync_offset,
        storage_options=storage_options,
    )
    return data[0] if len(data) == 1 else data


@doc.fill
def file_reader(
    filename,
    lazy: bool = False,
    chunks="auto",
    mmap_mode: str | None = None,
    navigation_shape: tuple[int, ...] | None = None,
    first_frame: int | None = None,
    last_frame: int | None = None,
    distributed: bool | None = None,
    print_info: bool = False,
    flip_y: bool = True,
    series: bool = False,
    counters: str | None = None,
    show_progressbar: bool | None = None,
    quad_gap: int | None = None,
    bin_signal: int = 1,
    bin_navigation: int = 1,
    sync_offset: int = 0,
    storage_options: dict | None = None,
    **kwargs,
) -> list[dict]:
    """Read a Quantum Detectors Merlin ``.mib`` file for HyperSpy.

    Parameters
    ----------
    {FILENAME}
    {LAZY}
    {CHUNKS}
    {MMAP_MODE}
    {NAVIGATION_SHAPE_READER}
    {FIRST_LAST_FRAME}
    {DISTRIBUTED}
    {PRINT_INFO}
    flip_y : bool, default=True
        Reverse the row order so the image reads as in the Merlin software
        (row 0 of the file is the bottom of the image), as RosettaSciIO's
        built-in reader does. ``False`` keeps file order. Recorded in
        ``original_metadata.mib_plugin.flip_y``.
    {SERIES}
    {COUNTERS}
    {SHOW_PROGRESSBAR}
    {GEOMETRY}
    {STORAGE_OPTIONS}
        A reference file written by ``rsciio-mib reference`` (``.json``) is
        read too: the same signal, its pixels fetched through the references.
    **kwargs
        ``mib_prop`` is passed on to :func:`load_mib_data`; any other
        keyword is an error.

    Returns
    -------
    list of dict
        RosettaSciIO signal dictionaries (``data``, ``axes``, ``metadata``,
        ``original_metadata``) with native-endian data shaped
        ``(*scan, rows, cols)``: one, or one per counter when split.

    Notes
    -----
    An interrupted acquisition keeps its complete scan lines; what is dropped
    is counted in a warning and in ``original_metadata.mib_plugin``.
    """
    unknown = set(kwargs) - {"mib_prop"}
    if unknown:
        raise TypeError(f"file_reader() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    _warn_distributed(distributed, "file_reader")
    if is_reference(filename):
        from .reference import read_reference

        return read_reference(filename, lazy=lazy, flip_y=flip_y, storage_options=storage_options)
    datasets, prop, plans, transforms = _load(
        filename,
        lazy=lazy,
        chunks=chunks,
        mmap_mode=mmap_mode,
        navigation_shape=navigation_shape,
        first_frame=first_frame,
        last_frame=last_frame,
        mib_prop=kwargs.get("mib_prop"),
        print_info=print_info,
        series=series,
        counters=counters,
        show_progressbar=show_progressbar,
        flip=flip_y,
        quad_gap=quad_gap,
        bin_signal=bin_signal,
        bin_navigation=bin_navigation,
        sync_offset=sync_offset,
        storage_options=storage_options,
    )
    return [
        signal_dict(data, prop, plan, transform, flip_y) for data, plan, transform in zip(datasets, plans, transforms)
    ]


def signal_dict(data, prop: MIBProperties, plan: ScanPlan, transform, flip_y: bool) -> dict:
    """The RosettaSciIO signal dictionary of one dataset."""
    md = metadata(prop, prop.source.name, transform)
    if plan.counter is not None:
        md["General"]["title"] += f" (counter {plan.counter})"
    return {
        "data": data,
        "axes": axes(data.shape[:-2], data.shape[-2:], transform.bin_navigation, transform.bin_signal),
        "metadata": md,
        "original_metadata": original_metadata(prop, plan, flip_y, transform),
        "mapping": {},
    }


def _headers_list(headers, max_index: int) -> list:
    if isinstance(headers, (bytes, bytearray, str)):
        headers = [headers]
    elif isinstance(headers, np.ndarray):
        headers = headers.ravel()
    else:
        headers = list(headers)
    if not isinstance(max_index, (int, np.integer)) or isinstance(max_index, bool) or max_index < -1 or max_index == 0:
        raise ValueError(f"`max_index` must be -1 (all) or a positive integer, not {max_index!r}")
    return headers if max_index == -1 else headers[:max_index]


@doc.fill
def parse_exposures(headers, max_index: int = 10000) -> list[float]:
    """Exposure time of each frame in ms.

    Taken from the ``MQ1A`` nanosecond field, else from the seconds field of
    older headers.

    Parameters
    ----------
    {HEADERS}
    {MAX_INDEX}

    Returns
    -------
    list of float
        Exposure in ms per header.

    Examples
    --------
    >>> data, headers = load_mib_data("scan.mib", return_headers=True)  # doctest: +SKIP
    >>> parse_exposures(headers, max_index=-1)  # doctest: +SKIP
    """
    return [header_exposure_ms(h, i) for i, h in enumerate(_headers_list(headers, max_index))]


@doc.fill
def parse_timestamps(headers, max_index: int = 10000) -> list[str]:
    """Start time of each frame.

    The ``MQ1A`` UTC time with ns resolution (``2021-04-15T13:44:43.100924481Z``),
    else the Merlin PC's local time with µs resolution.

    Parameters
    ----------
    {HEADERS}
    {MAX_INDEX}

    Returns
    -------
    list of str
        One timestamp per header.
    """
    return [header_timestamp(h, i) for i, h in enumerate(_headers_list(headers, max_index))]


__all__ = ["file_reader", "load_mib_data", "parse_exposures", "parse_timestamps", "MIBProperties", "MIBFormatError"]


def load(path, **kwargs):
    """HyperSpy signal(s) from a ``.mib`` path, URL, file object or reference file.

    For what ``hs.load`` cannot take (URLs, file objects): the same signal
    classes, metadata and ``lazy=`` as ``hs.load("scan.mib")``.

    Parameters
    ----------
    path : str, pathlib.Path, URL, file object
        The ``.mib`` (or a reference ``.json`` from ``rsciio-mib reference``).
    **kwargs
        Keywords of :func:`file_reader` (``lazy``, ``navigation_shape``,
        ``storage_options``, ...).

    Returns
    -------
    hyperspy.signal.BaseSignal or list of them
        One signal, or one per counter when the frames are split.
    """
    import hyperspy
    from hyperspy.io import dict2signal

    lazy = kwargs.get("lazy", False)
    signals = []
    for d in file_reader(path, **kwargs):
        signal = dict2signal(d, lazy=lazy)
        signal.metadata.set_item(
            "General.FileIO.0",
            {
                "operation": "load",
                "hyperspy_version": hyperspy.__version__,
                "io_plugin": "rsciio_mib_plugin",
                "timestamp": _now(),
            },
        )
        signals.append(signal)
    return signals[0] if len(signals) == 1 else signals


def _now() -> str:
    from datetime import datetime

    return datetime.now().astimezone().isoformat()
