"""The RosettaSciIO "quantumdetector" API, composed from the stages of the reader."""

from __future__ import annotations

import warnings

import numpy as np

from . import _docstrings as doc
from .errors import MIBFormatError
from .format.frame_header import header_exposure_ms, header_timestamp
from .reader.load import Shaping, load_datasets
from .reader.navigator import check_navigator
from .reader.properties import MIBProperties
from .sources.source import is_reference


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
    {TRANSFORMS}
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
    shaping = Shaping(
        navigation_shape,
        first_frame,
        last_frame,
        counters,
        sync_offset,
        quad_gap,
        bin_signal,
        bin_navigation,
        infer=False,
    )
    data, _ = load_datasets(
        path,
        shaping,
        lazy=lazy,
        print_info=print_info,
        mib_prop=mib_prop,
        series=series,
        storage_options=storage_options,
        chunks=chunks,
        mmap_mode=mmap_mode,
        return_mmap=return_mmap,
        return_headers=return_headers,
        show_progressbar=show_progressbar,
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
    navigator="auto",
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
    {TRANSFORMS}
    {STORAGE_OPTIONS}
        A reference file written by ``rsciio-mib reference`` (``.json``) is
        read too: the same signal, its pixels fetched through the references.
    navigator : {{"auto", "total", "bright_field", None}} or array, default="auto"
        The image ``s.plot()`` browses the scan with, attached as
        ``s.navigator`` so HyperSpy computes nothing over the data to plot:
        ``"total"`` counts per position, ``"bright_field"`` counts in the
        bright-field aperture the previews use, an array of the navigation
        shape (array order), or ``None``. ``"auto"``: ``"total"`` for eager
        loads (counted while the frames are read), ``None`` for lazy ones
        (asking for one costs one pass over the data).
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
        from .reader.reference import read_reference

        return read_reference(filename, lazy=lazy, flip_y=flip_y, storage_options=storage_options)
    shaping = Shaping(
        navigation_shape,
        first_frame,
        last_frame,
        counters,
        sync_offset,
        quad_gap,
        bin_signal,
        bin_navigation,
        flip=flip_y,
    )
    if isinstance(navigator, str) and navigator == "auto":
        navigator = None if lazy else "total"
    check_navigator(navigator)
    totals = [] if isinstance(navigator, str) and navigator == "total" and not lazy else None
    data, plan = load_datasets(
        filename,
        shaping,
        lazy=lazy,
        print_info=print_info,
        mib_prop=kwargs.get("mib_prop"),
        series=series,
        storage_options=storage_options,
        chunks=chunks,
        mmap_mode=mmap_mode,
        show_progressbar=show_progressbar,
        totals=totals,
    )
    kind = navigator if isinstance(navigator, str) else "navigator"
    return plan.signal_dicts(data, plan.navigators(data, navigator, totals), kind)


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
