"""Reference files may make the reader read frame pixels of .mib files and nothing else (issue 23,
items 18 and 19): edited or planted references are refused before any pixel is read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from servers import SERVERS, printed_port, running

from rsciio_mib_plugin import MIBFormatError, MIBWarning, file_reader, write_mib
from rsciio_mib_plugin.reader.reference import write_references


@pytest.fixture
def refs(tmp_path):
    """A 4x6 scan, its reference file, and a way to write an edited copy of it."""
    rng = np.random.default_rng(18)
    scan = write_mib(tmp_path / "scan.mib", rng.integers(0, 4096, (4, 6, 256, 256), dtype=np.uint16), hdr={"ScanX": 6})
    write_references(scan, tmp_path / "scan.json")
    original = json.loads((tmp_path / "scan.json").read_text())

    def edited(change) -> Path:
        copy = json.loads(json.dumps(original))
        change(copy["refs"])
        out = tmp_path / "edited.json"
        out.write_text(json.dumps(copy))
        return out

    return scan, tmp_path / "scan.json", edited


def _spec(refs: dict, **changes) -> None:
    spec = json.loads(refs["data/.zarray"])
    spec.update(changes)
    refs["data/.zarray"] = json.dumps(spec)


def test_an_untouched_reference_reads_as_the_file(refs):
    scan, ref, _ = refs
    np.testing.assert_array_equal(file_reader(str(ref))[0]["data"], file_reader(scan)[0]["data"])


def test_a_reference_pointing_at_a_private_file_is_refused(refs, tmp_path):
    _, _, edited = refs
    key = tmp_path / "id_rsa"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n" + "A" * 8000)
    planted = edited(lambda r: r.__setitem__("data/0.0.0.0", [str(key), 0, 131072]))
    with pytest.raises(MIBFormatError, match=rf"edited.json: points at '{key}', which is not a .mib file; refused"):
        file_reader(str(planted))
    disguised = tmp_path / "id_rsa.mib"
    disguised.write_bytes(key.read_bytes())
    planted = edited(lambda r: r.__setitem__("data/0.0.0.0", [str(disguised), 0, 8192]))
    with pytest.raises(MIBFormatError, match=r"edited.json: its target .*id_rsa.mib' is not a readable .mib file"):
        file_reader(str(planted))
    inline = edited(lambda r: r.__setitem__("data/0.0.0.0", "base64:AAAA"))
    with pytest.raises(MIBFormatError, match=r"entry 'data/0.0.0.0' is not the pixels of one frame"):
        file_reader(str(inline))
    whole = edited(lambda r: r.__setitem__("data/0.0.0.0", [str(key)]))
    with pytest.raises(MIBFormatError, match=r"entry 'data/0.0.0.0' is not the pixels of one frame"):
        file_reader(str(whole))
    relative = edited(lambda r: r.__setitem__("data/0.0.0.0", ["scan.mib", 384, 8192]))
    with pytest.raises(MIBFormatError, match=r"relative path 'scan.mib'"):
        file_reader(str(relative))
    extra = edited(
        lambda r: r.__setitem__("other/.zattrs", json.dumps({})) or r.__setitem__("x/y/0.0", [str(key), 0, 1])
    )
    with pytest.raises(MIBFormatError, match=r"entry 'x/y/0.0' is not the pixels of one frame"):
        file_reader(str(extra))


def test_a_reference_reads_only_frame_pixels(refs):
    scan, _, edited = refs
    ref = json.loads(Path(str(scan).replace(".mib", ".json")).read_text())["refs"]["data/0.0.0.0"]
    for bad in ([ref[0], ref[1] - 384, ref[2]], [ref[0], ref[1] + 1, ref[2]], [ref[0], ref[1], ref[2] + 384]):
        moved = edited(lambda r, bad=bad: r.__setitem__("data/0.0.0.0", bad))
        with pytest.raises(MIBFormatError, match=r"chunk \(0, 0\): bytes \d+-\d+ of .* are not the pixels of one"):
            file_reader(str(moved))
    past = edited(lambda r: r.__setitem__("data/0.0.0.0", [ref[0], ref[1] + 24 * (ref[2] + 384), ref[2]]))
    with pytest.raises(MIBFormatError, match="are not the pixels of one of its frames"):
        file_reader(str(past))
    compressed = edited(lambda r: _spec(r, compressor={"id": "zlib", "level": 1}))
    with pytest.raises(MIBFormatError, match="one stored frame per chunk"):
        file_reader(str(compressed))
    dtype = edited(lambda r: _spec(r, dtype="<f8"))
    with pytest.raises(MIBFormatError, match="declares \\(256, 256\\) frames of '<f8'"):
        file_reader(str(dtype))


def test_an_edited_shape_is_refused_before_anything_is_allocated(refs):
    """A 4x6 scan declared 60000x60000 would be 14 TB of zeros."""
    _, _, edited = refs
    huge = edited(lambda r: _spec(r, shape=[60000, 60000, 256, 256]))
    with pytest.raises(MIBFormatError, match=r"declares 3600000000 scan positions but lists frames for 24"):
        file_reader(str(huge))
    dropped = edited(lambda r: r.pop("data/3.5.0.0"))
    with pytest.raises(MIBFormatError, match=r"declares 24 scan positions but lists frames for 23, and its metadata"):
        file_reader(str(dropped), lazy=True)


def test_blank_positions_of_a_reference_are_reported(tmp_path):
    rng = np.random.default_rng(19)
    scan = write_mib(tmp_path / "scan.mib", rng.integers(0, 4096, (4, 6, 256, 256), dtype=np.uint16), hdr={"ScanX": 6})
    with pytest.warns(MIBWarning):
        write_references(scan, tmp_path / "late.json", sync_offset=-2)
    with pytest.warns(MIBWarning, match=r"late.json: 2 scan position\(s\) have no frame"):
        (d,) = file_reader(str(tmp_path / "late.json"))
    assert d["metadata"]["Signal"]["blank_positions"].sum() == 2 and not d["data"][0, :2].any()


def test_a_reference_cannot_send_requests_to_other_hosts_or_read_local_files_from_a_url(refs, tmp_path):
    scan, _, edited = refs
    with running([SERVERS / "range_http.py", tmp_path], tmp_path, printed_port) as (port, log):
        host = edited(lambda r: r.__setitem__("data/0.0.0.0", [f"http://127.0.0.1:{port}/latest/meta-data", 0, 8]))
        with pytest.raises(MIBFormatError, match="meta-data', which is not a .mib file; refused"):
            file_reader(str(host))
        assert log.read_text().splitlines()[1:] == []  # not one request was made
        local = edited(lambda r: None)
        with pytest.raises(
            MIBFormatError, match=rf"edited.json: read from a URL, it points at the local file '{scan}'"
        ):
            file_reader(f"http://127.0.0.1:{port}/{local.name}")


def _attrs(refs: dict, change) -> None:
    attrs = json.loads(refs["data/.zattrs"])
    change(attrs)
    refs["data/.zattrs"] = json.dumps(attrs)


def test_every_field_zarr_or_the_reader_uses_is_checked(refs):
    """Found by benchmarks/fuzz_campaign.py: a ragged blank_positions list (ValueError) and a hostile
    fill_value (zarr's MetadataError) escaped as other errors; attributes of the wrong kind would too."""
    _, _, edited = refs
    cases = [
        (lambda r: _attrs(r, lambda a: a["metadata"].setdefault("Signal", {}).update(blank_positions=[[1, 0], [0]])),
         "blank_positions must be booleans of the scan's shape"),
        (lambda r: _attrs(r, lambda a: a["metadata"].setdefault("Signal", {}).update(blank_positions=True)),
         "blank_positions must be booleans of the scan's shape"),
        (lambda r: _spec(r, fill_value="F"), "one stored frame per chunk"),
        (lambda r: _spec(r, fill_value=[{"id": "delta"}]), "one stored frame per chunk"),
        (lambda r: _spec(r, dimension_separator="/"), "one stored frame per chunk"),
        (lambda r: r.__setitem__(".zgroup", json.dumps({"zarr_format": 3})), "'.zgroup' must be"),
        (lambda r: _attrs(r, lambda a: a.update(axes="x")), "'axes' must be a JSON list"),
        (lambda r: _attrs(r, lambda a: a.update(metadata=[])), "'metadata' must be a JSON object"),
        (lambda r: _attrs(r, lambda a: a.update(original_metadata=None)), "'original_metadata' must be a JSON object"),
        (lambda r: _attrs(r, lambda a: a.update(rsciio_mib_plugin="x")), "not written by rsciio-mib reference"),
        (lambda r: _attrs(r, lambda a: a["axes"][0].update(size=10**9)), "'axes' of sizes .* do not describe"),
    ]  # fmt: skip
    for change, message in cases:
        with pytest.raises(MIBFormatError, match=rf"edited.json: .*{message}"):
            file_reader(str(edited(change)), lazy=True)
