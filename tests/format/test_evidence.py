"""Times, exposures and counter fields of many headers at once (``parse_evidence``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsciio_mib_plugin import MIBProperties, write_mib
from rsciio_mib_plugin.errors import MIBFormatError
from rsciio_mib_plugin.format.frame_header import _evidence_of_alike, parse_evidence
from rsciio_mib_plugin.reader.frames import read_headers


def _one_by_one(headers):
    """The header-by-header parse (one header at a time never takes the shortcut)."""
    parts = [parse_evidence(headers[i : i + 1], i) for i in range(len(headers))]
    times = None if any(p[0] is None for p in parts) else np.concatenate([p[0] for p in parts])
    return times, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])


def _headers(path):
    prop = MIBProperties.from_path(path)
    return read_headers(prop.source, prop.geometry, 0, prop.number_of_frames_in_file)


def _same(a, b):
    assert (a[0] is None) == (b[0] is None)
    if a[0] is not None:
        np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])


def test_every_real_sample_parses_as_header_by_header(samples):
    paths = sorted(samples.glob("*.mib"))
    assert len(paths) >= 20
    for path in paths:
        headers = _headers(path)
        _same(parse_evidence(headers), _one_by_one(headers))
        if len(headers) > 1:  # the headers of one acquisition are alike: the shortcut is taken
            assert _evidence_of_alike(headers, 0) is not None, path.name


@pytest.mark.parametrize("mq1a", [True, False])
@pytest.mark.parametrize("exposure", [0.001, [0.1, 0.25, 0.5, 0.9]])
def test_synthetic_headers_parse_as_header_by_header(tmp_path, mq1a, exposure):
    times = np.datetime64("2026-11-24T11:59:59.999", "ns").astype(np.int64) + np.array([0, 1, 999_999, 10**12])
    path = write_mib(
        tmp_path / "a.mib",
        np.zeros((4, 4, 256), np.uint16),
        exposure=exposure,
        timestamps=times,
        mq1a=mq1a,
        first_number=99_998,
        counter=1,
    )
    headers = _headers(path)
    fast, slow = parse_evidence(headers), _one_by_one(headers)
    _same(fast, slow)
    assert _evidence_of_alike(headers, 0) is not None
    np.testing.assert_allclose(fast[1], np.broadcast_to(np.asarray(exposure) * 1e3, 4))
    if mq1a:
        np.testing.assert_array_equal(fast[0], times)


def test_headers_laid_out_differently_are_parsed_one_by_one(tmp_path):
    path = write_mib(tmp_path / "a.mib", np.zeros((3, 4, 256), np.uint16))
    headers = _headers(path).copy()
    fields = headers[1].split(b",")
    at = fields.index(b"MQ1A") + 1
    fields[at] = b" " + fields[at]  # the time one byte later in this header only
    headers[1] = b",".join(fields)
    fast = parse_evidence(headers)
    _same(fast, _one_by_one(headers))
    assert fast[0] is not None


def test_day_first_dates_fall_back_to_the_full_parse(tmp_path):
    path = write_mib(tmp_path / "a.mib", np.zeros((3, 4, 256), np.uint16), mq1a=False)
    headers = _headers(path)
    fields = [h.split(b",") for h in headers]
    day_first = []
    for i, f in enumerate(fields):
        f[9] = f"24/11/2026 12:00:0{i}".encode()
        day_first.append(b",".join(f))
    headers = np.array(day_first, dtype=headers.dtype)
    fast = parse_evidence(headers)
    _same(fast, _one_by_one(headers))
    assert np.diff(fast[0]).tolist() == [10**9, 10**9]


def test_a_bad_field_among_alike_headers_names_that_header(tmp_path):
    path = write_mib(tmp_path / "a.mib", np.zeros((5, 4, 256), np.uint16), counter=1_000_000_000)
    headers = _headers(path)
    fields = headers[3].split(b",")
    fields[11] = b"9999999999"  # same layout, a counter field beyond 2**31 - 1
    headers[3] = b",".join(fields)
    with pytest.raises(MIBFormatError, match="header 3: .*counter 9999999999"):
        parse_evidence(headers)


_SEED_HEADERS = {}


def _seed_headers(tmp_path_factory, mq1a: bool) -> np.ndarray:
    if mq1a not in _SEED_HEADERS:
        path = write_mib(
            tmp_path_factory.mktemp("evidence") / "seed.mib",
            np.zeros((6, 4, 256), np.uint16),
            exposure=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
            mq1a=mq1a,
            counter=7,
        )
        _SEED_HEADERS[mq1a] = _headers(path)
    return _SEED_HEADERS[mq1a].copy()


@settings(max_examples=400, deadline=None)
@given(
    mq1a=st.booleans(),
    edits=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 383), st.sampled_from(b"0123456789 ,.:-TZns/\x00x")),
        max_size=4,
    ),
)
def test_any_edit_parses_as_header_by_header(tmp_path_factory, mq1a, edits):
    """Edited headers, alike or not: the same times, exposures and counters, or the same error."""
    headers = _seed_headers(tmp_path_factory, mq1a)
    for frame, at, byte in edits:
        raw = bytearray(headers[frame].ljust(384, b"\x00"))
        raw[at] = byte
        headers[frame] = bytes(raw)
    try:
        slow = _one_by_one(headers)
    except MIBFormatError as err:
        with pytest.raises(MIBFormatError) as caught:
            parse_evidence(headers)
        assert str(caught.value) == str(err)
        return
    _same(parse_evidence(headers), slow)
