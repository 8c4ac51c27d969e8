"""Byte offsets named in errors are where the bytes are, MPX captures included."""

from __future__ import annotations

import numpy as np
import pytest

from rsciio_mib_plugin import MIBFormatError, MIBProperties, write_mib


@pytest.mark.parametrize("mpx", [False, True])
def test_a_last_header_of_another_kind_is_named_at_its_offset(tmp_path, mpx):
    path = write_mib(tmp_path / "scan.mib", np.zeros((4, 16, 256), np.uint16), mpx=mpx)
    raw = bytearray(path.read_bytes())
    last = raw.rfind(b"MQ1,")
    raw[raw.index(b"U16", last) : raw.index(b"U16", last) + 3] = b"U08"
    path.write_bytes(bytes(raw))
    with pytest.raises(MIBFormatError, match=rf"frame 3 \(byte offset {last}\): pixel_type is 'U08'"):
        MIBProperties.from_path(path)
