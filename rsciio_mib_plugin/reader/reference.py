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
import re
import warnings

import numpy as np

from ..errors import MIBFormatError, MIBWarning
from ..sources.atomic import refuse_existing, replacing
from ..sources.source import Remote, is_url, public_url
from .navigator import attach, check_navigator, navigator_dict

FORMAT = "rsciio_mib_plugin reference 1"
ZGROUP = {"zarr_format": 2}
#: Every array's ``.zarray`` but its shape, chunks and dtype: stored pixels, one chunk per frame.
ZARRAY = {
    "zarr_format": 2,
    "compressor": None,
    "filters": None,
    "fill_value": 0,
    "order": "C",
    "dimension_separator": ".",
}
#: Pixel types of processed frames in a file (big-endian; 1, 6, 12 and 24-bit counters).
STORED_DTYPES = ("|u1", ">u2", ">u4")


def references(
    path,
    *,
    storage_options: dict | None = None,
    navigation_shape: tuple[int, ...] | None = None,
    first_frame: int | None = None,
    last_frame: int | None = None,
    sync_offset: int = 0,
    navigator: str | None = None,
) -> dict:
    """The reference set (``{"version": 1, "refs": {...}}``) describing a processed ``.mib``.

    The scan shape is found as :func:`file_reader` finds it; each dataset
    (each counter when frames alternate) is one array of the root group:
    ``data``, or ``counter_0``, ``counter_1``. Pixels are in file row order
    and big-endian, as stored; the attributes say so. ``navigator``
    (``"total"`` or ``"bright_field"``) computes a navigator in one pass over
    the pixels and stores it in the attributes: a load of the reference file
    attaches it as ``s.navigator``.

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
    check_navigator(navigator, arrays=False)
    read_plan = ReadPlan.make(prop, Shaping(navigation_shape, first_frame, last_frame, sync_offset=sync_offset))
    plans = read_plan.plans
    geometry = prop.geometry
    images = read_plan.navigators(read_plan.arrays(lazy=True), navigator) if navigator else [None] * len(plans)
    refs = {".zgroup": json.dumps(ZGROUP)}
    for plan, transform, image in zip(plans, read_plan.transforms, images):
        name = "data" if len(plans) == 1 else f"counter_{plan.counter}"
        frames = plan.frame_numbers()
        nav = plan.shape
        # The signal file_reader gives, rows in file order; the pixels are not read (a zero-stride stand-in).
        stand_in = np.broadcast_to(np.zeros((), geometry.dtype), nav + geometry.shape)
        info = signal_dict(stand_in, prop, plan, transform)
        refs[f"{name}/.zarray"] = json.dumps(
            dict(
                ZARRAY,
                shape=list(nav + geometry.shape),
                chunks=[1] * len(nav) + list(geometry.shape),
                dtype=geometry.file_dtype.str,
            )
        )
        names = [axis.get("name") or f"axis_{i}" for i, axis in enumerate(info["axes"])]
        refs[f"{name}/.zattrs"] = json.dumps(
            {
                "_ARRAY_DIMENSIONS": names,
                "rsciio_mib_plugin": {"format": FORMAT, "row_order": "file", "counter": plan.counter},
                "axes": info["axes"],
                "metadata": info["metadata"],
                "original_metadata": info["original_metadata"],
            }
            | ({} if image is None else {"navigator": {"kind": navigator, "data": image}}),
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


def open_references(refs, storage_options: dict | None = None, name: str | None = None):
    """The zarr group a reference file (path, URL or the loaded dict, then called ``name`` in
    errors) describes, once :func:`check_references` has found it points at frame pixels of
    ``.mib`` files only."""
    import fsspec
    import zarr

    refs, loaded_name = load_reference_file(refs)
    name = name or loaded_name
    protocol = check_references(refs, name, storage_options, from_url=is_url(name))
    mapper = fsspec.get_mapper("reference://", fo=refs, remote_protocol=protocol, remote_options=storage_options or {})
    return zarr.open_group(mapper, mode="r")


def load_reference_file(refs) -> tuple[dict, str]:
    """The reference set of a file (path or URL; a dict is taken as it is) and the name errors
    give it (a URL without its query). Not yet checked: :func:`check_references`."""
    import fsspec

    name = "<references>" if isinstance(refs, dict) else public_url(os.fspath(refs))
    if not isinstance(refs, dict):
        with fsspec.open(os.fspath(refs), "rt", encoding="utf-8") as f:
            try:
                refs = json.load(f)
            except ValueError as err:
                raise MIBFormatError(f"{name}: not a reference file (not JSON: {err})") from None
    return refs, name


def reference_targets(refs: dict) -> list[str]:
    """The files a checked reference set points at."""
    return sorted({value[0] for value in refs["refs"].values() if isinstance(value, list)})


#: A chunk key of one frame: its navigation indices, then ``0.0`` for the frame.
_CHUNK_KEY = re.compile(r"(\d+\.)*0\.0")


def check_references(refs, name: str, storage_options: dict | None = None, from_url: bool = False) -> str:
    """Check that a reference set makes the reader read frame pixels of ``.mib`` files and nothing
    else; the fsspec protocol of its targets.

    The rule (README, "References"): every chunk is ``[target, offset, length]``,
    its target a ``.mib`` file (a local absolute path, or a URL; only URLs when
    the reference itself was read from a URL) whose first frame header is read
    and checked, and its range exactly the pixels of one frame of that file.
    Each array is what ``rsciio-mib reference`` writes (stored dtype, one
    uncompressed chunk per frame), and every position it declares has its frame
    unless the metadata mark it blank. A reference that could read another file,
    another host's data or fill gigabytes of zeros is refused before any pixel is read.

    Raises
    ------
    MIBFormatError
        Naming the reference file and the entry that breaks the rule.
    """
    from .acquisition import open_acquisition

    if not isinstance(refs, dict) or refs.get("version") != 1 or not isinstance(refs.get("refs"), dict):
        raise MIBFormatError(f"{name}: not a reference file of rsciio-mib reference (version 1 with 'refs')")
    specs, attrs, chunks = {}, {}, {}
    for key, value in refs["refs"].items():
        head, _, leaf = str(key).rpartition("/")
        if key == ".zgroup" or (leaf in (".zarray", ".zattrs") and head and "/" not in head):
            if not isinstance(value, str):
                raise MIBFormatError(f"{name}: entry {key!r} must be JSON text")
            try:
                (specs if leaf == ".zarray" else attrs)[head] = json.loads(value)
            except ValueError as err:
                raise MIBFormatError(f"{name}: entry {key!r} is not JSON ({err})") from None
            if key == ".zgroup" and attrs[""] != ZGROUP:
                raise MIBFormatError(f"{name}: entry '.zgroup' must be {json.dumps(ZGROUP)}")
            continue
        if not (
            head
            and "/" not in head
            and _CHUNK_KEY.fullmatch(leaf)
            and isinstance(value, list)
            and len(value) == 3
            and isinstance(value[0], str)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value[1:])
        ):
            raise MIBFormatError(
                f"{name}: entry {key!r} is not the pixels of one frame ([.mib file, offset, length]); "
                "a reference may only point at frame pixels of .mib files"
            )
        chunks.setdefault(head, []).append((tuple(map(int, leaf.split(".")[:-2])), *value))
    targets = {t for entries in chunks.values() for _, t, _, _ in entries}
    protocols = set()
    geometries = {}
    for target in sorted(targets):
        url = is_url(target)
        if not public_url(target).lower().endswith(".mib") if url else not target.lower().endswith(".mib"):
            raise MIBFormatError(f"{name}: points at {target!r}, which is not a .mib file; refused")
        if from_url and not url:
            raise MIBFormatError(f"{name}: read from a URL, it points at the local file {target!r}; refused")
        if not url and not os.path.isabs(target):
            raise MIBFormatError(f"{name}: points at the relative path {target!r}; references hold absolute paths")
        try:
            prop = open_acquisition(target, storage_options=storage_options if url else None)
        except (OSError, ValueError) as err:
            raise MIBFormatError(
                f"{name}: its target {public_url(target)!r} is not a readable .mib file: {err}"
            ) from None
        geometries[target] = prop
        protocols.add(target.split("://", 1)[0].lower() if url else "file")
    if len(protocols) > 1:
        raise MIBFormatError(f"{name}: points at files of several kinds ({', '.join(sorted(protocols))}); refused")
    for array in sorted(set(specs) | set(chunks)):
        _check_array(name, array, specs.get(array), attrs.get(array) or {}, chunks.get(array, []), geometries)
    return protocols.pop() if protocols else "file"


def _check_array(name, array, spec, attrs, entries, props) -> None:
    where_ = f"{name}: array {array!r}"
    if not isinstance(spec, dict) or not isinstance(spec.get("shape"), list) or len(spec["shape"]) < 2:
        raise MIBFormatError(f"{where_} has no valid .zarray")
    shape = spec["shape"]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape):
        raise MIBFormatError(f"{where_}: shape {shape!r} is not a list of positive integers")
    nav, frame = tuple(shape[:-2]), tuple(shape[-2:])
    for key, target, offset, length in entries:
        prop = props[target]
        geometry = prop.geometry
        if frame != geometry.shape or spec.get("dtype") != geometry.file_dtype.str:
            raise MIBFormatError(
                f"{where_}: declares {frame} frames of {spec.get('dtype')!r} but {public_url(target)!r} holds "
                f"{geometry.shape} frames of {geometry.file_dtype.str!r}"
            )
        if len(key) != len(nav) or any(i >= n for i, n in zip(key, nav)):
            raise MIBFormatError(f"{where_}: chunk {key} lies outside its shape {shape}")
        if length != geometry.payload_bytes or not _is_payload(prop, offset):
            raise MIBFormatError(
                f"{where_}, chunk {key}: bytes {offset}-{offset + length - 1} of {public_url(target)!r} are not the "
                "pixels of one of its frames; refused"
            )
    expected = dict(ZARRAY, shape=shape, chunks=[1] * len(nav) + list(frame), dtype=spec.get("dtype"))
    if spec != expected or spec.get("dtype") not in STORED_DTYPES:
        raise MIBFormatError(
            f"{where_}: .zarray must be {dict(expected, dtype=' or '.join(STORED_DTYPES))} "
            f"(one stored frame per chunk), not {spec}"
        )
    blank = _checked_attrs(where_, attrs, shape)
    unlisted = int(np.prod(nav, dtype=np.int64)) - len({key for key, *_ in entries})
    if unlisted != int(blank.sum()):
        raise MIBFormatError(
            f"{where_}: declares {int(np.prod(nav, dtype=np.int64))} scan positions but lists frames for "
            f"{len(entries)}, and its metadata mark {int(blank.sum())} blank; refused rather than filled with zeros"
        )
    sizes = [axis.get("size") if isinstance(axis, dict) else None for axis in attrs["axes"]]
    if sorted(sizes, key=str) != sorted(shape, key=str):  # HyperSpy's order is not the array's
        raise MIBFormatError(f"{where_}: .zattrs 'axes' of sizes {sizes} do not describe the shape {shape}")


def _checked_attrs(where_: str, attrs, shape: list[int]) -> np.ndarray:
    """The attributes :func:`read_reference` uses, checked (written by ``rsciio-mib reference``);
    the scan positions the metadata mark blank."""
    if not isinstance(attrs, dict) or not isinstance(attrs.get("rsciio_mib_plugin"), dict):
        raise MIBFormatError(f"{where_}: its .zattrs were not written by rsciio-mib reference")
    if attrs["rsciio_mib_plugin"].get("format") != FORMAT:
        raise MIBFormatError(f"{where_}: its .zattrs were not written by rsciio-mib reference")
    for key, kind in (("metadata", dict), ("original_metadata", dict), ("axes", list)):
        if not isinstance(attrs.get(key), kind):
            raise MIBFormatError(f"{where_}: .zattrs {key!r} must be a JSON {'object' if kind is dict else 'list'}")
    nav = tuple(shape[:-2])
    _check_navigator(where_, attrs.get("navigator"), nav)
    signal = attrs["metadata"].get("Signal", {})
    value = signal.get("blank_positions") if isinstance(signal, dict) else None
    if value is None:
        return np.zeros(nav, bool)
    try:
        blank = np.asarray(value)
    except ValueError:
        blank = None
    if blank is None or blank.dtype != bool or blank.shape != nav:
        raise MIBFormatError(f"{where_}: metadata.Signal.blank_positions must be booleans of the scan's shape {nav}")
    return blank


def _check_navigator(where_: str, stored, nav: tuple[int, ...]) -> None:
    """A stored navigator is ``{"kind": "total" or "bright_field", "data": counts shaped like the scan}``."""
    if stored is None:
        return
    try:
        ok = isinstance(stored, dict) and stored.get("kind") in ("total", "bright_field")
        data = np.asarray(stored["data"]) if ok else None
    except (ValueError, KeyError):
        data = None
    if data is None or data.shape != nav or data.dtype.kind not in "iuf":
        raise MIBFormatError(f"{where_}: .zattrs 'navigator' must hold 'kind' and numbers of the scan's shape {nav}")


def _is_payload(prop, offset: int) -> bool:
    """True where ``offset`` is where the pixels of one of the file's frames start."""
    geometry, segment = prop.geometry, prop.segments[0]
    first = geometry.offset(0, segment.base, segment.prefix) + geometry.header_bytes
    stride = geometry.offset(1, segment.base, segment.prefix) - geometry.offset(0, segment.base, segment.prefix)
    k, rest = divmod(offset - first, stride)
    return rest == 0 and 0 <= k < segment.count


def read_reference(path, *, lazy: bool = False, flip_y: bool = True, storage_options: dict | None = None) -> list:
    """RosettaSciIO dictionaries from a reference file, as :func:`file_reader` gives for the ``.mib``."""
    import dask.array as da

    group = open_references(path, storage_options)
    out = []
    for _, array in sorted(group.arrays()):
        attrs = array.attrs.asdict()  # checked by check_references
        data = da.from_zarr(array) if lazy else array[...]
        data = data.astype(data.dtype.newbyteorder("="))
        if flip_y:
            data = data[..., ::-1, :]
        metadata = attrs["metadata"]
        blank = metadata.get("Signal", {}).get("blank_positions")
        if blank is not None:
            blank = metadata["Signal"]["blank_positions"] = np.asarray(blank, bool)
            warnings.warn(
                f"{public_url(os.fspath(path)) if not isinstance(path, dict) else '<references>'}: "
                f"{int(blank.sum())} scan position(s) have no frame: zeros, marked in metadata.Signal.blank_positions",
                MIBWarning,
                stacklevel=3,
            )
        original = attrs["original_metadata"]
        original.setdefault("mib_plugin", {})["flip_y"] = flip_y
        signal = {"data": data, "axes": attrs["axes"], "metadata": metadata, "original_metadata": original}
        stored = attrs.get("navigator")
        if stored is not None:
            title = metadata["General"]["title"]
            attach(signal, navigator_dict(np.asarray(stored["data"]), signal["axes"], title, stored["kind"]))
        out.append(signal)
    return out
