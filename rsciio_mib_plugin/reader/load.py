"""Read an acquisition into arrays and RosettaSciIO signal dictionaries.

The one place where the reader's stages meet: the acquisition opened once
(:class:`.Acquisition`), what to make of it (:class:`Shaping`, the readers'
keywords), the plan of every dataset (:class:`ReadPlan`: scan plan and
transform) and the frame reader that reads it (eager, lazy, memory map).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import MIBWarning
from ..format.frame_header import parse_evidence
from .acquisition import Acquisition, open_acquisition
from .frames import FrameReader, fetch_all, memmap_frames, read_headers
from .properties import MIBProperties
from .scan import Evidence, ScanPlan, plan_scan
from .signal import axes, metadata, original_metadata
from .transforms import Transform, check_transform

#: Frames whose headers are examined for the scan shape (timestamps,
#: exposures, counter fields).
EVIDENCE_FRAMES = 16384


def read_evidence(prop: Acquisition, count: int = EVIDENCE_FRAMES, placed: bool = True) -> Evidence:
    """Timestamps, exposures and counter fields of the first ``count`` positions.

    Placed by frame number, a lost frame's time is interpolated and its exposure is the median,
    so a loss does not look like a scan line's end or a flyback frame.
    """
    frame_of = prop.placement.frame_of if placed else None
    first_file = prop.segments[0].count if prop.segments else prop.number_of_frames_in_file
    if frame_of is None:
        count = min(count, EVIDENCE_FRAMES, first_file)
        times, exposures, counters = parse_evidence(read_headers(prop.source, prop.geometry, 0, count))
        return Evidence(times_ns=times, exposures_ms=exposures, counters=counters)
    frames = frame_of[: min(count, EVIDENCE_FRAMES, frame_of.size)]
    stored = frames[(frames >= 0) & (frames < first_file)]
    times, exposures, counters = parse_evidence(read_headers(prop.source, prop.geometry, 0, int(stored.max()) + 1))
    known = (frames >= 0) & (frames < first_file)
    where = np.flatnonzero(known)
    out_times = None
    if times is not None:
        out_times = np.interp(np.arange(frames.size), where, times[frames[known]]).astype(np.int64)
    out_exposures = np.full(frames.size, float(np.median(exposures[frames[known]])))
    out_exposures[known] = exposures[frames[known]]
    out_counters = np.full(frames.size, -1, np.int64)
    out_counters[known] = counters[frames[known]]
    return Evidence(times_ns=out_times, exposures_ms=out_exposures, counters=out_counters)


@dataclass(frozen=True)
class Shaping:
    """What to make of the frames of an acquisition: the readers' shaping keywords.

    ``infer=False`` is ``load_mib_data``'s rule: without ``navigation_shape``
    the frames are a stack as stored. ``flip`` is ``file_reader``'s
    orientation (:class:`.Transform`).
    """

    navigation_shape: tuple[int, ...] | None = None
    first_frame: int | None = None
    last_frame: int | None = None
    counters: str | None = None
    sync_offset: int = 0
    quad_gap: int | None = None
    bin_signal: int = 1
    bin_navigation: int = 1
    infer: bool = True
    flip: bool = False


@dataclass(frozen=True)
class ReadPlan:
    """An acquisition and what will be read of it: one scan plan and transform per dataset (counter)."""

    prop: Acquisition
    plans: tuple[ScanPlan, ...]
    transforms: tuple[Transform, ...]

    @classmethod
    def make(cls, prop: Acquisition, shaping: Shaping = Shaping(), placed: bool = True) -> ReadPlan:
        """Plan every dataset of ``prop``; what the plan drops or assumes is warned about (once each).

        ``placed``: frames at the positions their numbers say (lost ones blank); ``False``: the
        frames as stored (what a memory map of the file shows).
        """
        placement = prop.placement
        placed = placed and placement.frame_of is not None
        plans = plan_scan(
            placement.positions if placed else prop.number_of_frames_in_file,
            shaping.first_frame,
            shaping.last_frame,
            shaping.navigation_shape,
            prop.hdr,
            lambda count: read_evidence(prop, count, placed),
            shaping.counters,
            shaping.infer,
            shaping.sync_offset,
        )
        messages = placement.messages() if placed or placement.note else []
        if placement.frame_of is not None and not placed:
            messages.append(
                f"{placement.lost_count} frame(s) lost during acquisition: a memory map shows the file as stored "
                "(later frames at earlier positions); return_mmap=False places every frame by its number"
            )
        for plan in plans:
            plan.placement = placement.frame_of if placed else None
            messages += plan.messages
        for message in messages:
            warnings.warn(f"{prop.source.name}: {message}", MIBWarning, stacklevel=5)
        transforms = tuple(
            check_transform(
                shaping.quad_gap,
                shaping.bin_signal,
                shaping.bin_navigation,
                prop.geometry,
                plan.shape,
                prop.source.name,
                shaping.flip,
            )
            for plan in plans
        )
        return cls(prop, tuple(plans), transforms)

    def __str__(self) -> str:
        """What ``print_info`` prints: the properties, then what is read."""
        plan = self.plans[0]
        return (
            repr(MIBProperties.of(self.prop))
            + f"\nNumber of frames to be read: {plan.count}\nNavigation shape (array order): {plan.shape}"
        )

    def reader(self, index: int = 0) -> FrameReader:
        """The frame reader of dataset ``index``."""
        prop = self.prop
        reader = FrameReader.of(prop.source, prop.segments, prop.geometry, self.transforms[index])
        if self.plans[index].placement is not None:
            reader = dataclasses.replace(reader, numbers=prop.placement.numbers)
        elif prop.source.remote:  # a URL's numbers are not read when opening: the frames read are checked
            first = prop.placement.first_number
            reader = dataclasses.replace(reader, numbers=np.arange(first, first + prop.number_of_frames_in_file))
        return reader

    def arrays(
        self,
        *,
        lazy=False,
        chunks="auto",
        mmap_mode=None,
        return_mmap=False,
        return_headers=False,
        show_progressbar=None,
        totals=None,
    ) -> list:
        """The data of every dataset: read, lazy (dask) or a memory map of the file as stored.

        ``totals`` (a list, for eager reads): receives each dataset's counts per
        position, taken while its frames are read (:meth:`.FrameReader.read_plan`).
        """
        prop, out = self.prop, []
        if return_headers and not return_mmap:
            raise ValueError("`return_headers=True` needs `return_mmap=True`")
        if return_mmap and len(prop.segments) > 1:
            raise ValueError("a memory map covers one file: use return_mmap=False to read a multi-file series")
        mode = _check_mmap_mode(mmap_mode, lazy)
        source = prop.source
        for i, (plan, transform) in enumerate(zip(self.plans, self.transforms)):
            if return_mmap:
                if not transform.plain or plan.blank:
                    raise ValueError(
                        "a memory map shows the file as it is: quad_gap, bin_signal, bin_navigation and a negative "
                        "sync_offset need return_mmap=False"
                    )
                if source.remote:  # no memory map of a URL or file object: its bytes, fetched once
                    source = fetch_all(source)
                frames = memmap_frames(source, prop.geometry, prop.number_of_frames_in_file, plan, mode)
                out.append((frames["data"], frames["header"]) if return_headers else frames["data"])
            elif lazy:
                out.append(self.reader(i).lazy(plan, chunks))
            else:
                reader = self.reader(i)
                counts = None if totals is None else np.empty(reader.navigation_shape(plan), np.uint64)
                out.append(reader.read_plan(plan, show_progressbar=show_progressbar, totals=counts))
                if totals is not None:
                    totals.append(counts)
        return out

    def navigators(self, arrays: list, navigator, totals: list | None = None) -> list:
        """The navigator image of every dataset (``None``: none): the counts taken while reading
        (``totals``) or summed in one pass, the virtual bright field, or the array given."""
        from .navigator import check_navigator

        check_navigator(navigator)
        images = []
        for i, data in enumerate(arrays):
            if navigator is None or data.ndim < 3:
                images.append(None)
            elif not isinstance(navigator, str):
                images.append(np.asarray(navigator))
            elif navigator == "total":
                if totals:
                    images.append(totals[i])
                else:
                    image = data.sum(axis=(-2, -1), dtype=np.uint64)
                    images.append(np.asarray(image.compute() if hasattr(image, "compute") else image))
            else:
                from .aperture import virtual_bright_field

                images.append(virtual_bright_field(data)[0])
        return images

    def signal_dicts(self, arrays: list, navigators: list | None = None, kind: str = "navigator") -> list[dict]:
        """The RosettaSciIO signal dictionary of every dataset, with its navigator image, if any
        (:meth:`navigators`; ``kind`` names it in its title)."""
        from .navigator import attach, navigator_dict

        out = []
        for i, (data, plan, transform) in enumerate(zip(arrays, self.plans, self.transforms)):
            d = signal_dict(data, self.prop, plan, transform)
            image = navigators[i] if navigators else None
            if image is not None:
                attach(d, navigator_dict(image, d["axes"], d["metadata"]["General"]["title"], kind))
            out.append(d)
        return out


def open_plan(
    path, shaping: Shaping = Shaping(), *, mib_prop=None, series=False, storage_options=None, placed=True
) -> ReadPlan:
    """Open ``path`` (or take ``mib_prop``, parsed before) and plan what to read of it."""
    if mib_prop is None:
        return ReadPlan.make(open_acquisition(path, series=series, storage_options=storage_options), shaping, placed)
    if not isinstance(mib_prop, MIBProperties) or mib_prop.acquisition is None:
        raise TypeError("`mib_prop` must be a parsed MIBProperties (MIBProperties.from_path(path))")
    return ReadPlan.make(mib_prop.acquisition, shaping, placed)


def load_datasets(
    path,
    shaping: Shaping = Shaping(),
    *,
    lazy=False,
    print_info=False,
    mib_prop=None,
    series=False,
    storage_options=None,
    **array_options,
) -> tuple[list, ReadPlan]:
    """The data of every dataset of ``path`` and the plan they were read by.

    ``array_options``: ``chunks``, ``mmap_mode``, ``return_mmap``,
    ``return_headers``, ``show_progressbar`` (:meth:`ReadPlan.arrays`).
    Frames are selected and offset, then shaped, then gapped and binned.
    """
    placed = not array_options.get("return_mmap", False)  # a memory map is the file as stored
    plan = open_plan(path, shaping, mib_prop=mib_prop, series=series, storage_options=storage_options, placed=placed)
    if lazy and plan.prop.buffer:
        raise ValueError("Loading a memory buffer lazily is not supported: pass a file path, or lazy=False")
    if print_info:
        print(plan)  # noqa: T201
    return plan.arrays(lazy=lazy, **array_options), plan


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


def blank_positions(plan: ScanPlan, transform: Transform) -> np.ndarray | None:
    """Navigation-shaped mask of the positions without a frame (lost, or before a negative
    ``sync_offset``); binned: a bin with any. ``None`` when every position has its frame."""
    if not plan.shape or not (plan.blank or plan.placement is not None):
        return None
    blank = (plan.frame_numbers() < 0).reshape(plan.shape)
    if not blank.any():
        return None
    b = transform.bin_navigation
    if b > 1:
        nav = transform.navigation_shape(plan.shape)
        cut = blank[tuple(slice(0, n * b) for n in nav)]
        blank = cut.reshape(tuple(x for n in nav for x in (n, b))).any(axis=tuple(range(1, 2 * len(nav), 2)))
    return blank


def signal_dict(data, prop: Acquisition, plan: ScanPlan, transform: Transform) -> dict:
    """The RosettaSciIO signal dictionary of one dataset."""
    md = metadata(prop, prop.source.name, transform)
    if plan.counter is not None:
        md["General"]["title"] += f" (counter {plan.counter})"
    blank = blank_positions(plan, transform)
    if blank is not None:
        md["Signal"]["blank_positions"] = blank
    return {
        "data": data,
        "axes": axes(data.shape[:-2], data.shape[-2:], transform.bin_navigation, transform.bin_signal),
        "metadata": md,
        "original_metadata": original_metadata(prop, plan, transform.flip, transform),
        "mapping": {},
    }
