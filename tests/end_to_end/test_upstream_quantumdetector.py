"""RosettaSciIO's own quantumdetector tests, run on the plugin.

The test file shipped in the installed rosettasciio wheel
(``rsciio/tests/test_quantumdetector.py``) is run unchanged except for two
things: its functions come from ``rsciio_mib_plugin`` (its fixture helper
``parse_hdr_file`` stays RosettaSciIO's), and its data folder is a copy of
our samples in pytest's temporary folder (its own setup would unzip into, and
delete, a folder inside the installed package). Every deliberate difference
is a strict xfail with its reason (README, "Differences from the built-in
reader"); tests whose files are not among our samples skip, saying so.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

UPSTREAM = Path(importlib.util.find_spec("rsciio").origin).parent / "tests" / "test_quantumdetector.py"
if not UPSTREAM.is_file():  # pragma: no cover - every rosettasciio wheel since 0.2 ships it
    pytest.fail(f"RosettaSciIO's quantumdetector tests are not installed ({UPSTREAM})", pytrace=False)

_IMPORT = re.compile(r"from rsciio\.quantumdetector\._api import \((?P<names>[^)]*)\)", re.S)
_source = UPSTREAM.read_text(encoding="utf-8")
_match = _IMPORT.search(_source)
assert _match, "the upstream import of the reader's functions changed; update this wrapper"
_replacement = (
    "from rsciio_mib_plugin import MIBProperties, load_mib_data, parse_exposures, parse_timestamps; "
    "from rsciio.quantumdetector._api import parse_hdr_file"
)
# the same number of lines, so tracebacks point at the upstream file's lines
_source = _IMPORT.sub(_replacement + "\n" * _match.group(0).count("\n"), _source)
exec(compile(_source, str(UPSTREAM), "exec"))  # noqa: S102 - the upstream test module, as shipped


def setup_module():  # replaces the upstream one: the data come from the `_upstream_data` fixture
    pass


def teardown_module():
    pass


UNITS = "signal axes are in px, named kx/ky (pyxem's calibration understands px); the built-in leaves units empty"
NATIVE = "data are native-endian (uint16/uint32, not >u2/>u4): numba and pyxem's azimuthal integration need it"
STACK = (
    "Quad_9_Frame_CounterDepth_24 is a 9-frame stack: its 10 ns timestamp jitter is not a scan line; "
    "the built-in makes it a 3x3 scan"
)

#: Deliberate differences: test id (or prefix) -> reason.
DIFFERENCES = {
    "test_single_chip[Single_1_Frame_CounterDepth_1_": UNITS,
    "test_single_chip[Single_1_Frame_CounterDepth_6_": UNITS,
    "test_single_chip[Single_1_Frame_CounterDepth_12_": UNITS + "; " + NATIVE,
    "test_single_chip[Single_1_Frame_CounterDepth_24_": UNITS + "; " + NATIVE,
    "test_single_chip[Single_9_Frame_CounterDepth_1_": UNITS,
    "test_single_chip[Single_9_Frame_CounterDepth_6_": UNITS,
    "test_single_chip[Single_9_Frame_CounterDepth_12_": UNITS + "; " + NATIVE,
    "test_single_chip[Single_9_Frame_CounterDepth_24_": UNITS + "; " + NATIVE,
    "test_quad_chip[Quad_1_Frame_CounterDepth_1_": UNITS,
    "test_quad_chip[Quad_1_Frame_CounterDepth_6_": UNITS,
    "test_quad_chip[Quad_1_Frame_CounterDepth_12_": UNITS + "; " + NATIVE,
    "test_quad_chip[Quad_1_Frame_CounterDepth_24_": UNITS + "; " + NATIVE,
    "test_quad_chip[Quad_9_Frame_CounterDepth_1_": UNITS,
    "test_quad_chip[Quad_9_Frame_CounterDepth_6_": UNITS,
    "test_quad_chip[Quad_9_Frame_CounterDepth_12_": UNITS + "; " + NATIVE,
    "test_quad_chip[Quad_9_Frame_CounterDepth_24_": STACK + "; " + UNITS + "; " + NATIVE,
    "test_chunks[chunks1]": STACK + " (chunks for a 4-D array)",
    "test_chunks[chunks2]": STACK + " (chunks for a 4-D array)",
}


def _difference(name: str) -> str | None:
    return next((reason for prefix, reason in DIFFERENCES.items() if name.startswith(prefix)), None)


@pytest.fixture(scope="module")
def _upstream_copy(samples, tmp_path_factory):
    """The samples, copied: the upstream tests add files to their data folder."""
    folder = tmp_path_factory.mktemp("upstream-quantumdetector")
    for path in samples.iterdir():
        shutil.copy(path, folder)
    return folder


@pytest.fixture(autouse=True)
def _upstream_data(request, _upstream_copy, monkeypatch):
    monkeypatch.setitem(globals(), "TEST_DATA_DIR_UNZIPPED", _upstream_copy)
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    fname = params.get("fname")
    if fname is not None and not (_upstream_copy / fname).exists():
        pytest.skip(
            f"{fname} is in RosettaSciIO's Merlin_navigation4x2_signalNx256_ROI.zip, which the real samples "
            "(../shared/data/merlin) do not include and tests never download; the same ROI layout is "
            "tested on 002_4x2_6bit_roi128 of Merlin_navigation4x2_ROI.zip"
        )
    reason = _difference(request.node.name)
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason="deliberate difference: " + reason))


def test_every_difference_names_an_upstream_test():
    names = {name for name in globals() if name.startswith("test_")}
    for prefix in DIFFERENCES:
        assert prefix.split("[")[0] in names, prefix
