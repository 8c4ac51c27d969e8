"""References instead of copies: a processed ``.mib`` as a zarr array of byte ranges.

A processed frame's pixels are one contiguous run of big-endian integers
behind a fixed-size header (docs/format.md §3, §4.1), so every frame is a
known byte range of the file. A reference file (fsspec's ``reference://``
format, version 1) lists those ranges as the chunks of a zarr (v2) array, one
chunk per frame, with the axes and metadata as zarr attributes: plain zarr,
dask or xarray then read the pixels straight from the ``.mib`` without a
conversion. RAW (``R64``) frames are bit-packed words in an order that needs
decoding, which zarr cannot do: they are refused with a clear error.
"""

from __future__ import annotations

import json
import os

import numpy as np

from ..errors import MIBFormatError
from ..sources.atomic import refuse_existing, replacing
from ..sources.source import Remote, is_url, public_url

FORMAT = "rsciio_mib_plugin reference 1"


def references(
    path,
    *,
    storage_options: dict | None = None,
    navigation_shape: tuple[int, ...] | None = None,
    first_frame: int | None = None,
    last_frame: int | None = None,
    sync_offset: int = 0,
) -> dict:
    """The reference set (``{"version": 1, "refs": {...}}``) describing a processed ``.mib``.

    The scan shape is found as :func:`file_reader` finds it; each dataset
    (each counter when frames alternate) is one array of the root group:
    ``data``, or ``counter_0``, ``counter_1``. Pixels are in file row order
    and big-endian, as stored; the attributes say so.

    Raises
    ------
    MIBFormatError
        For RAW files (bit-packed pixels have no byte range of their own).
    """
    from .acquisition import open_acquisition
    from .load import ReadPlan, Shaping, signal_dict

    prop = open_acquisition(path, storage_options=storage_options)
    if prop.geometry.raw:
        raise MIBFormatError(
            f"{prop.source.name}: RAW (R64) frames are bit-packed 64-bit words whose pixels need reordering; "
            "a zarr reference can only point at stored pixels. Convert the file instead (rsciio-mib convert)"
        )
    read_plan = ReadPlan.make(prop, Shaping(navigation_shape, first_frame, last_frame, sync_offset=sync_offset))
    plans = read_plan.plans
    geometry = prop.geometry
    refs = {".zgroup": json.dumps({"zarr_format": 2})}
    for plan, transform in zip(plans, read_plan.transforms):
        name = "data" if len(plans) == 1 else f"counter_{plan.counter}"
        frames = plan.frame_numbers()
        nav = plan.shape
        # The signal file_reader gives, rows in file order; the pixels are not read (a zero-stride stand-in).
        stand_in = np.broadcast_to(np.zeros((), geometry.dtype), nav + geometry.shape)
        info = signal_dict(stand_in, prop, plan, transform)
        refs[f"{name}/.zarray"] = json.dumps(
            {
                "zarr_format": 2,
                "shape": list(nav + geometry.shape),
                "chunks": [1] * len(nav) + list(geometry.shape),
                "dtype": geometry.file_dtype.str,
                "compressor": None,
                "filters": None,
                "fill_value": 0,
                "order": "C",
                "dimension_separator": ".",
            }
        )
        names = [axis.get("name") or f"axis_{i}" for i, axis in enumerate(info["axes"])]
        refs[f"{name}/.zattrs"] = json.dumps(
            {
                "_ARRAY_DIMENSIONS": names,
                "rsciio_mib_plugin": {"format": FORMAT, "row_order": "file", "counter": plan.counter},
                "axes": info["axes"],
                "metadata": info["metadata"],
                "original_metadata": info["original_metadata"],
            },
            default=_jsonable,
        )
        firsts = [s.first for s in prop.segments]
        for index, frame in enumerate(np.asarray(frames).ravel().tolist()):
            if frame < 0:
                continue  # a blank frame (negative sync_offset): the fill value
            segment = prop.segments[int(np.searchsorted(firsts, frame, side="right")) - 1]
            local = frame - segment.first
            offset = geometry.offset(local, segment.base, segment.prefix) + geometry.header_bytes
            key = ".".join(map(str, np.unravel_index(index, nav) if nav else ())) + "." * bool(nav) + "0.0"
            refs[f"{name}/{key}"] = [_target(segment.path), int(offset), int(geometry.payload_bytes)]
    return {"version": 1, "refs": refs}


def _target(path) -> str:
    """Where a reference points: the URL without its query (never a signature), or the local
    file's absolute path."""
    if isinstance(path, Remote) or is_url(str(path)):
        return public_url(str(path))
    return os.path.abspath(path)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_references(path, output, *, overwrite: bool = False, **kwargs) -> dict:
    """Write :func:`references` of ``path`` to the JSON file ``output``; returns a short report."""
    output = os.fspath(output)
    if os.path.lexists(output) and not overwrite:
        refuse_existing(output)
    refs = references(path, **kwargs)
    with replacing(output, overwrite) as temp, open(temp, "w", encoding="utf-8") as f:
        json.dump(refs, f, separators=(",", ":"))
    arrays = [k[: -len("/.zarray")] for k in refs["refs"] if k.endswith("/.zarray")]
    chunks = sum(1 for k in refs["refs"] if not k.rsplit("/", 1)[-1].startswith("."))
    return {"output": output, "arrays": arrays, "chunks": chunks, "bytes": os.path.getsize(output)}


def open_references(refs, storage_options: dict | None = None):
    """The zarr group a reference file (path, URL or the loaded dict) describes."""
    import fsspec
    import zarr

    if not isinstance(refs, dict):
        with fsspec.open(os.fspath(refs), "rt", encoding="utf-8") as f:
            refs = json.load(f)
    targets = [v[0] for v in refs.get("refs", {}).values() if isinstance(v, list) and v]
    protocol = fsspec.utils.get_protocol(targets[0]) if targets else "file"
    mapper = fsspec.get_mapper("reference://", fo=refs, remote_protocol=protocol, remote_options=storage_options or {})
    return zarr.open_group(mapper, mode="r")


def read_reference(path, *, lazy: bool = False, flip_y: bool = True, storage_options: dict | None = None) -> list:
    """RosettaSciIO dictionaries from a reference file, as :func:`file_reader` gives for the ``.mib``."""
    import dask.array as da

    group = open_references(path, storage_options)
    out = []
    for name, array in sorted(group.arrays()):
        attrs = array.attrs.asdict()
        if attrs.get("rsciio_mib_plugin", {}).get("format") != FORMAT:
            raise MIBFormatError(f"{path}: array {name!r} was not written by rsciio-mib reference")
        data = da.from_zarr(array) if lazy else array[...]
        data = data.astype(data.dtype.newbyteorder("="))
        if flip_y:
            data = data[..., ::-1, :]
        original = attrs["original_metadata"]
        original.setdefault("mib_plugin", {})["flip_y"] = flip_y
        out.append({"data": data, "axes": attrs["axes"], "metadata": attrs["metadata"], "original_metadata": original})
    return out
