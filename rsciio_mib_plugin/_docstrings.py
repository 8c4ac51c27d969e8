"""Parameter documentation shared by the public functions (written once)."""

PATH = """path : str, pathlib.Path, URL, file object, bytes, bytearray or memoryview
        The ``.mib`` file: a local path, an fsspec URL (``s3://``,
        ``https://``, ``memory://`` ...; the ``.hdr`` with the same stem is
        fetched beside it), an open binary file object, or a buffer holding
        its bytes. Buffers cannot be loaded lazily."""

FILENAME = """filename : str, pathlib.Path, URL or file object
        The ``.mib`` file. A ``.hdr`` with the same stem (``.hdr`` or
        ``.HDR``) next to it is read when present; beside a URL, the
        ``.hdr`` of the same name is fetched."""

STORAGE_OPTIONS = """storage_options : dict, optional
        For a URL: passed to fsspec (credentials, ``endpoint_url`` in
        ``client_kwargs``, ...). Needs the ``remote`` extra
        (``pip install ".[remote]"`` in the clone) for ``s3://`` and
        ``http(s)://``."""

LAZY = """lazy : bool, default=False
        Return a dask array whose chunks read the file on demand."""

CHUNKS = """chunks : tuple, int, dict or str, default="auto"
        Chunks of the lazy array, as :func:`dask.array.core.normalize_chunks`
        understands them. ``"auto"`` keeps whole frames in every chunk
        (about 128 MiB each)."""

MMAP_MODE = """mmap_mode : {None, "r", "c"}, default=None
        Mode of the memory map returned with ``return_mmap=True``; ``None``
        means ``"r"`` when lazy, else ``"c"``. ``"r+"`` would let changes
        reach the file and is refused."""

NAVIGATION_SHAPE = """navigation_shape : tuple of int or None, default=None
        Scan shape in HyperSpy order ``(x, y)``; the data are then shaped
        ``(y, x, rows, cols)``. More frames than the file holds is an
        interrupted acquisition: the complete scan lines are kept and the rest
        is reported in a warning."""

NAVIGATION_SHAPE_READER = (
    NAVIGATION_SHAPE
    + """ ``None`` takes the shape
        from the ``.hdr`` (ScanX/ScanY, else Frames in Acquisition / Frames per
        Trigger), from flyback exposures or the frame timestamps for
        pixel-triggered scans, else gives a stack of frames."""
)

NAVIGATION_SHAPE_DATA = (
    NAVIGATION_SHAPE
    + """ ``None`` returns the frames
        as stored, a stack ``(frames, rows, cols)`` (one frame too), as
        RosettaSciIO's ``load_mib_data`` does; :func:`file_reader` infers the
        scan shape."""
)

FIRST_LAST_FRAME = """first_frame, last_frame : int or None, default=None
        The frames to load, with Python slicing semantics (negative values
        count from the end)."""

DISTRIBUTED = """distributed : bool, optional
        Deprecated, as in RosettaSciIO (0.8): passing it warns
        (``VisibleDeprecationWarning``) and changes nothing. Lazy arrays are
        always built from independent, picklable chunk reads that work on
        ``dask.distributed``."""

PRINT_INFO = """print_info : bool, default=False
        Print the :class:`MIBProperties` of the file."""

SERIES = """series : bool, default=False
        Gather the numbered files ``<prefix><digits>.mib`` of a multi-file
        acquisition, order them by their first frame number and read them as
        one; a gap in the frame numbers is reported, never filled. A list of
        paths does the same."""

COUNTERS = """counters : {None, "split", "join"}, default=None
        With both counters active (or colour mode) in the ``.hdr``, the frames
        of each trigger are split by the header's counter field into one
        dataset per counter. ``"split"`` splits whenever the counter fields
        repeat in a fixed order (files without ``.hdr``); ``"join"`` never
        splits. Continuous read/write ("Alternating") is one dataset."""

SHOW_PROGRESSBAR = """show_progressbar : bool or None, default=None
        Show a progress bar on stderr while an eager load reads: ``True``
        always; ``None`` for loads of more than 256 MB, following HyperSpy's
        ``show_progressbar`` preference when HyperSpy is in use, else whether
        stderr is a terminal (lazy arrays show HyperSpy's own bar on
        ``compute()``)."""

TRANSFORMS = """quad_gap : int or None, default=None
        For quad frames, put this many zero-filled rows and columns between
        the chips (3 gives 515×515, as pyxem and ePSIC do; a ``2x2G`` file's
        2-pixel gap is re-spaced). The gap pixels are recorded in
        ``original_metadata.mib_plugin.quad_gap`` and, for :func:`file_reader`,
        as a boolean mask in ``metadata.General.mask`` (pyxem's
        ``s.calibration.mask``). ``None`` keeps the file's layout.
    bin_signal, bin_navigation : int, default=1
        Sum bins of this many pixels per side in the detector plane, and of
        scan positions per navigation axis, done block by block while reading
        (eager memory is the binned array plus a few blocks). The dtype is
        the smallest unsigned type, never narrower than the frames', that
        holds the largest possible sum at the file's counter depth, so no sum
        overflows (12-bit binned 2×2 stays uint16, 24-bit becomes uint32 or
        uint64, 1-bit 16×16 uint16); the axes' scales grow by the factor and their
        offsets move to the bin centres. Sizes the factor does not divide are
        an error.
    sync_offset : int, default=0
        Positive: skip that many frames at the start; negative: put that many
        blank (zero) frames before the first. Applied to the selected frames
        (``first_frame``/``last_frame``) before the scan is shaped; frames that
        no longer fit at the end are dropped and counted in the warning.

    Frames are selected and offset first, then shaped (navigation shape,
    flyback, counters), then gapped, then binned."""

HEADERS = """headers : bytes or iterable of bytes
        One frame header, or many (a list, or the ``headers`` array returned
        by :func:`load_mib_data` with ``return_headers=True``)."""

MAX_INDEX = """max_index : int, default=10000
        Parse at most this many headers; ``-1`` parses all of them."""


def fill(func):
    """Decorator: fill a docstring's ``{NAME}`` fields with the fragments above."""
    fragments = {k: v for k, v in globals().items() if k.isupper()}
    func.__doc__ = func.__doc__.format(**fragments)
    return func
