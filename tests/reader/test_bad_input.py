"""Malformed, truncated and hostile input: clear errors and warnings, nothing lost."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsciio_mib_plugin import MIBFormatError, MIBWarning, file_reader, load_mib_data, write_mib

FRAME = (16, 256)


@pytest.fixture
def good(make_mib):
    return make_mib(name="good.mib", frame=FRAME)


def _mutate_header(path, frame, old: bytes, new: bytes):
    raw = bytearray(path.read_bytes())
    size = 384 + 2 * FRAME[0] * FRAME[1]
    start = frame * size
    head = raw[start : start + 384]
    assert old in head, (old, bytes(head[:80]))
    raw[start : start + 384] = head.replace(old, new, 1)
    path.write_bytes(bytes(raw))


# Each case: (description, mutation on the good file, expected error text)
HEADER_CASES = [
    ("wrong magic", 0, b"MQ1,", b"MQ2,", "expected 'MQ1'"),
    ("header size not a number", 0, b",00384,", b",00x84,", "header length .field 2. is '00x84'"),
    ("header size zero", 0, b",00384,", b",00000,", "header length .field 2. is 0"),
    ("header size huge", 0, b",00384,", b",99999,", "header length .field 2. is 99999"),
    ("header size too small", 0, b",00384,", b",00100,", "fields|expected"),
    ("width not a number", 0, b",0256,0016,", b",02x6,0016,", "image width .field 4. is '02x6'"),
    ("height zero", 0, b",0256,0016,", b",0256,0000,", "image height is 0"),
    ("unknown pixel type", 0, b",U16,", b",U07,", "pixel type .field 6. is 'U07'"),
    ("chip count not a number", 0, b",01,0256", b",0x,0256", "number of chips"),
    ("exposure not a number", 0, b",0.001000,", b",0.00a000,", "exposure in s .field 10."),
    ("ns exposure without unit", 0, b"1000000ns", b"100000000", "expected '<integer>ns'"),
    ("counter depth impossible", 0, b"ns,12,", b"ns,13,", "counter depth .field .*. is 13"),
    ("hostile 65535 x 65535 frame", 0, b",0256,0016,", b",65535,65535,", "hold no complete frame"),
    ("non-ASCII header", 0, b"MQ1A", b"M\xffQA", "not ASCII"),
    ("last frame of another shape", 11, b",0256,0016,", b",0128,0032,", "frame 11.*image|width is 128"),
    ("last frame of another type", 11, b",U16,", b",U32,", "frame 11.*pixel_type is 'U32'"),
]


@pytest.mark.parametrize("case", HEADER_CASES, ids=[c[0] for c in HEADER_CASES])
def test_malformed_headers_raise_mibformaterror(good, case):
    _, frame, old, new, message = case
    path, _ = good
    _mutate_header(path, frame, old, new)
    with pytest.raises(MIBFormatError, match=message) as info:
        file_reader(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_frame_in_the_middle_out_of_step(good):
    path, _ = good
    raw = bytearray(path.read_bytes())
    size = 384 + 2 * FRAME[0] * FRAME[1]
    raw[5 * size : 5 * size + 4] = b"XXXX"  # header 5 damaged (e.g. an inserted byte)
    path.write_bytes(bytes(raw))
    with pytest.raises(MIBFormatError, match=rf"frame 5 \(byte offset {5 * size}\)"):
        load_mib_data(path, return_mmap=False)
    with pytest.raises(MIBFormatError, match="frame 5"):
        load_mib_data(path, lazy=True, return_mmap=False).compute()
    # the frames before it stay reachable
    np.testing.assert_array_equal(load_mib_data(path, return_mmap=False, last_frame=5).shape, (5,) + FRAME)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "no data"),
        (b"hello world, this is not a mib file" * 20, "not a Merlin frame header"),
        (b"MQ1", "truncated"),
    ],
)
def test_not_mib_files(tmp_path, content, message):
    path = tmp_path / "bad.mib"
    path.write_bytes(content)
    with pytest.raises(MIBFormatError, match=message):
        file_reader(path)


def test_shorter_than_one_frame(good, tmp_path):
    path, _ = good
    short = tmp_path / "short.mib"
    short.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(MIBFormatError, match="hold no complete frame"):
        load_mib_data(short)


def test_lost_frames_are_reported_and_left_blank(tmp_path):
    data = np.arange(1, 7, dtype=np.uint8)[:, None, None] * np.ones(FRAME, np.uint8)
    path = write_mib(tmp_path / "lost.mib", data, first_number=1, hdr=False)
    raw = bytearray(path.read_bytes())
    size = 384 + FRAME[0] * FRAME[1]
    raw[5 * size : 5 * size + 11] = b"MQ1,000009,"  # frames 6..8 never arrived
    path.write_bytes(bytes(raw))
    with pytest.warns(MIBWarning, match=r"3 frame\(s\) lost during acquisition \(frame numbers 6-8\)"):
        out = load_mib_data(path, return_mmap=False)
    assert out.shape == (9,) + FRAME  # positions, not frames present
    np.testing.assert_array_equal(out[:5], data[:5])
    assert not out[5:8].any()
    np.testing.assert_array_equal(out[8], data[5])


@pytest.mark.parametrize(
    "hdr_bytes, message",
    [
        (b"\x00\x01\x02binary" * 10, "binary"),
        (b"just some words\r\nwithout keys\r\n", "no 'Key"),
        (b"HDR,\t\r\n" + b"x" * (2 << 20), "larger than"),
    ],
)
def test_damaged_hdr_degrades_to_frame_headers(good, hdr_bytes, message):
    path, data = good
    path.with_suffix(".hdr").write_bytes(hdr_bytes)
    with pytest.warns(MIBWarning, match=message):
        (d,) = file_reader(path, flip_y=False)
    np.testing.assert_array_equal(d["data"].reshape(data.shape), data)


def test_inconsistent_hdr_values(good):
    path, data = good
    text = path.with_suffix(".hdr").read_bytes().replace(b"ScanX:\t4", b"ScanX:\tfour")
    text = text.replace(b"Counter Depth (number):\t12", b"Counter Depth (number):\t6")
    path.with_suffix(".hdr").write_bytes(text)
    with pytest.warns(MIBWarning, match="Counter Depth.*6.*12"):
        (d,) = file_reader(path, flip_y=False)
    np.testing.assert_array_equal(d["data"], data)  # line trigger from the counts


def test_wrong_arguments(good):
    path, _ = good
    with pytest.raises(ValueError, match="navigation_shape"):
        load_mib_data(path, navigation_shape=(-1, 3))
    with pytest.raises(TypeError, match="navigation_shape"):
        load_mib_data(path, navigation_shape="4x3")
    with pytest.raises(ValueError, match="first_frame=20"):
        load_mib_data(path, first_frame=20)
    with pytest.raises(ValueError, match="chunks"):
        load_mib_data(path, lazy=True, return_mmap=False, chunks="nonsense")
    with pytest.raises(TypeError, match="unexpected keyword"):
        file_reader(path, navigation=(4, 3))
    with pytest.raises(TypeError):
        load_mib_data(path, navigation=(4, 3))
    with pytest.raises(ValueError, match="mmap_mode"):
        load_mib_data(path, mmap_mode="w+")
    with pytest.raises(FileNotFoundError):
        load_mib_data(path.with_name("missing.mib"))
    with pytest.raises(TypeError, match="path"):
        load_mib_data(12)


def test_larger_navigation_shape_is_an_interrupted_acquisition(good):
    path, data = good
    with pytest.warns(MIBWarning, match="interrupted acquisition"):
        out = load_mib_data(path, navigation_shape=(4, 10), return_mmap=False)
    np.testing.assert_array_equal(out, data)


def test_file_is_never_written(good):
    path, _ = good
    before, mtime = path.read_bytes(), os.stat(path).st_mtime_ns
    for kwargs in ({}, {"lazy": True}, {"mmap_mode": "c"}):
        mm = load_mib_data(path, **kwargs)
        if mm.flags.writeable:
            mm[...] = 0
        del mm
    with pytest.warns(MIBWarning, match="written to the file"):
        load_mib_data(path, mmap_mode="r+")  # explicit request: allowed, but said aloud
    file_reader(path)
    assert path.read_bytes() == before and os.stat(path).st_mtime_ns == mtime


# --- fuzzing ------------------------------------------------------------------

_SEED = {}


def _seed_bytes() -> tuple[bytes, np.ndarray]:
    if not _SEED:
        import tempfile
        from pathlib import Path

        data = np.random.default_rng(1).integers(0, 64, size=(2, 3) + FRAME, dtype=np.uint8)
        with tempfile.TemporaryDirectory() as folder:
            path = write_mib(Path(folder) / "seed.mib", data, hdr=False)
            _SEED["raw"], _SEED["data"] = path.read_bytes(), data
    return _SEED["raw"], _SEED["data"]


def _read_everything(raw: bytes) -> None:
    """Only documented outcomes: data, MIBFormatError, MIBWarning (buffer and file)."""
    import tempfile
    from pathlib import Path

    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as folder:
        warnings.simplefilter("ignore", MIBWarning)
        path = Path(folder) / "fuzz.mib"
        path.write_bytes(raw)
        for source, kwargs in (
            (raw, {"return_mmap": False}),
            (raw, {}),
            (path, {"return_mmap": False}),
            (path, {"lazy": True, "return_mmap": False}),
        ):
            try:
                out = load_mib_data(source, **kwargs)
                out = out.compute() if hasattr(out, "compute") else out
            except MIBFormatError:
                continue
            assert isinstance(out, np.ndarray)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_header_bytes(data):
    raw, _ = _seed_bytes()
    frame = data.draw(st.integers(0, 5))
    size = len(raw) // 6
    position = frame * size + data.draw(st.integers(0, 383))
    value = data.draw(st.binary(min_size=1, max_size=8))
    mutated = raw[:position] + value + raw[position + len(value) :]
    _read_everything(mutated[: len(raw)])


FIELD_VALUES = st.one_of(
    st.text(alphabet="0123456789", min_size=0, max_size=7),
    st.text(alphabet="0123456789", min_size=15, max_size=330),  # beyond int64 and float (issue 11)
    st.sampled_from(
        [
            "",
            "-1",
            "0",
            "99999",
            "U07",
            "R64",
            "U01",
            "U64",
            "1e9",
            "1e400",
            "nan",
            "inf",
            "MQ1A",
            "   2x2G",
            "Nx1",
            "ff",
        ]
    ),
    st.sampled_from(["3000-01-01T00:00:00.000000000Z", "1677-01-01T00:00:00Z", "9" * 320 + "ns", "-5ns"]),
    st.text(min_size=0, max_size=6).filter(lambda s: "," not in s),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 53), FIELD_VALUES, st.integers(0, 200000), st.sampled_from([None, 0, 3, 5]))
def test_fuzz_header_fields_and_sizes(index, value, cut, only):
    """A field of every header, or of one frame's header only (first, middle, last)."""
    raw, _ = _seed_bytes()
    head = raw[:384].split(b"\x00", 1)[0].decode()
    fields = head.split(",")
    fields[index % len(fields)] = value
    text = ",".join(fields).encode("utf-8", "replace")[:384]
    header = text.ljust(384, b"\x00")
    size = len(raw) // 6
    mutated = b"".join(
        (header if only in (None, i) else raw[i * size : i * size + 384]) + raw[i * size + 384 : (i + 1) * size]
        for i in range(6)
    )
    _read_everything(mutated[: max(0, len(mutated) - cut)])
