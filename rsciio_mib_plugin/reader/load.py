"""Read an acquisition into arrays and RosettaSciIO signal dictionaries.

The one place where the reader's stages meet: the properties of the files, the
scan plan, the transforms and the frame readers (eager, lazy, memory map).
"""

from __future__ import annotations

import warnings

from ..errors import MIBWarning
from ..format.frame_header import parse_evidence
from .frames import fetch_all, lazy_array, memmap_frames, read_headers, read_planned, read_transformed
from .properties import MIBProperties
from .scan import Evidence, ScanPlan, plan_scan
from .signal import axes, metadata, original_metadata
from .transforms import check_transform

#: Frames whose headers are examined for the scan shape (timestamps,
#: exposures, counter fields).
EVIDENCE_FRAMES = 16384


def read_evidence(prop: MIBProperties, count: int = EVIDENCE_FRAMES) -> Evidence:
    """Timestamps, exposures and counter fields of the first ``count`` frames."""
    count = min(count, EVIDENCE_FRAMES, prop.segments[0].count if prop.segments else prop.number_of_frames_in_file)
    times, exposures, counters = parse_evidence(read_headers(prop.source, prop.geometry, 0, count))
    return Evidence(times_ns=times, exposures_ms=exposures, counters=counters)


def plan_datasets(
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


def load_datasets(
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
    plans = plan_datasets(prop, navigation_shape, first_frame, last_frame, counters, infer, sync_offset)
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
            out.append(
                read_planned(source, prop.segments, geometry, plan, show_progressbar=show_progressbar, flip=flip)
            )
        else:
            out.append(read_transformed(source, prop.segments, geometry, plan, transform, flip=flip))
    return out, prop, plans, transforms


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
