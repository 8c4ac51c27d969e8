"""HyperSpy ``s.save("x.mib")``: the RosettaSciIO ``file_writer`` for MIB files."""

from __future__ import annotations

import numpy as np

from .format.write import write_mib


def file_writer(filename, signal: dict, flip_y: bool = True, counter_depth: int | None = None, **kwds) -> None:
    """Write a HyperSpy signal to a processed Merlin ``.mib`` file and its ``.hdr``.

    Parameters
    ----------
    filename : str or pathlib.Path
        The ``.mib`` file to write.
    signal : dict
        The signal dictionary HyperSpy passes (``data``, ``axes``, ``metadata``).
        Data must be unsigned integers (or bool) with 256, 512 or 514 columns
        and no more rows than columns, with at most two navigation axes.
    flip_y : bool, default=True
        Reverse the rows back to file order, the inverse of what
        :func:`file_reader` does by default, so that saving and loading
        round-trips.
    counter_depth : {1, 6, 12, 24}, optional
        Default: the smallest Merlin depth that holds the largest value
        (1, 6, 12 or 24 bit).
    **kwds
        Other keywords HyperSpy passes (``overwrite`` is handled by HyperSpy);
        anything else is refused.
    """
    unknown = set(kwds) - {"show_progressbar", "compression", "write_dataset", "close_file"}
    if unknown:
        raise TypeError(f"file_writer() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    data = signal["data"]
    if hasattr(data, "compute"):
        data = data.compute()
    data = np.asarray(data)
    if data.dtype.kind not in "ub":
        raise ValueError(f"MIB files hold unsigned integers: cannot write data of dtype {data.dtype}")
    if data.ndim < 2 or data.ndim > 4:
        raise ValueError(f"MIB files hold frames with up to two navigation axes: got data of shape {data.shape}")
    axes = signal.get("axes", [])
    nav = [a for a in axes if a.get("navigate")]
    if axes and len(axes) - len(nav) != 2:
        raise ValueError("MIB files hold two-dimensional frames: the signal must have two signal axes")
    if flip_y:
        data = data[..., ::-1, :]
    md = signal.get("metadata", {})
    exposure = (
        md.get("Acquisition_instrument", {})
        .get("TEM", {})
        .get("Detector", {})
        .get("Diffraction", {})
        .get("exposure_time")
        or md.get("Acquisition_instrument", {}).get("dwell_time")
        or 0.001
    )
    if counter_depth is None:
        peak = int(data.max()) if data.size else 0
        counter_depth = next((d for d in (1, 6, 12, 24) if peak < 1 << d), None)
        if counter_depth is None:
            raise ValueError(f"MIB files hold at most 24-bit counts: the data reach {peak}")
    write_mib(filename, data, counter_depth=counter_depth, exposure=float(exposure))
