"""Registration with RosettaSciIO: in-process table edits and fresh installs.

The install tests build a fresh virtual environment per install mode that sees
this environment's dependencies through a path ``.pth`` (so nothing is
downloaded), install the project into it with ``pip install [-e] .`` and run
each check in a new interpreter there.
"""

from __future__ import annotations

import copy
import json
import os
import site
import subprocess
import sys
import sysconfig
import textwrap

import pytest
import rsciio._io_plugins as rsciio_io
from conftest import REPO


@pytest.fixture
def restored_table():
    """Restore ``IO_PLUGINS`` exactly after an in-process test."""
    from rsciio_mib_plugin import registration as reg

    plugins = rsciio_io.IO_PLUGINS
    entries = list(plugins)
    before = copy.deepcopy(entries)
    saved = reg._saved
    yield plugins
    plugins[:] = entries
    for entry, original in zip(entries, before):
        entry.clear()
        entry.update(original)
    reg._saved = saved
    assert plugins == before


def _mib_entries(plugins):
    return [p for p in plugins if "mib" in [e.lower() for e in p["file_extensions"]]]


def test_register_and_unregister_in_place(restored_table):
    from rsciio_mib_plugin import register, unregister

    plugins = restored_table
    unregister()  # start from the built-in table whatever the startup hook did
    pristine = copy.deepcopy(list(plugins))
    list_id, entry = id(plugins), _mib_entries(plugins)[0]
    assert entry["api"] == "rsciio.quantumdetector"

    assert register() is True and register() is True  # idempotent
    assert id(rsciio_io.IO_PLUGINS) == list_id
    (mib,) = _mib_entries(plugins)
    assert mib is entry and mib["api"] == "rsciio_mib_plugin" and mib["name"] == "QuantumDetector"
    assert "QuantumDetectorMIB" in mib["name_aliases"]
    builtin = [p for p in plugins if p["name"] == "QuantumDetectorBuiltin"]
    assert len(builtin) == 1 and builtin[0]["api"] == "rsciio.quantumdetector"

    assert unregister() is True and unregister() is False
    assert plugins == pristine and _mib_entries(plugins)[0] is entry


def test_unexpected_table_is_left_alone(restored_table, caplog):
    from rsciio_mib_plugin import register, unregister

    plugins = restored_table
    unregister()
    entry = _mib_entries(plugins)[0]
    entry["api"] = "somebody.else"
    snapshot = copy.deepcopy(list(plugins))
    with caplog.at_level("DEBUG", logger="rsciio_mib_plugin.registration"):
        assert register() is False
    assert plugins == snapshot
    assert "unexpected mib entries" in caplog.text


def test_specifications_yaml_matches_the_package():
    import yaml

    top = yaml.safe_load((REPO / "specifications.yaml").read_text())
    shipped = yaml.safe_load((REPO / "rsciio_mib_plugin" / "specifications.yaml").read_text())
    assert top == shipped
    assert set(top) == {
        "name",
        "name_aliases",
        "description",
        "full_support",
        "file_extensions",
        "default_extension",
        "writes",
        "non_uniform_axis",
    }
    assert "mib" in top["file_extensions"]


# --- fresh installs -----------------------------------------------------------


def _make_env(root, editable: bool):
    """A new venv that sees our dependencies, with the project installed into it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    with open(os.path.join(purelib, "zz_test_dependencies.pth"), "w") as f:
        f.write("\n".join(sorted(deps)) + "\n")
    cmd = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-build-isolation"]
    cmd += ["-e", str(REPO)] if editable else [str(REPO)]
    subprocess.run(cmd, check=True, cwd=root)
    return python


@pytest.fixture(scope="module", params=["wheel", "editable"])
def fresh_python(request, tmp_path_factory):
    return _make_env(tmp_path_factory.mktemp(request.param), editable=request.param == "editable")


def _run(python, code: str, env_extra=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RSCIIO_MIB_PLUGIN") and k != "PYTHONPATH"}
    env.update(env_extra or {})
    done = subprocess.run(
        [str(python), "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


LOAD = """
    import json, hyperspy.api as hs
    path = {path!r}
    out = {{}}
    s = hs.load(path)
    out["plain"] = [s.metadata.General.FileIO.Number_0.io_plugin, list(s.data.shape), s.data.dtype.str]
    s = hs.load(path, lazy=True, navigation_shape=(4, 2))
    out["lazy"] = [s.metadata.General.FileIO.Number_0.io_plugin, list(s.data.shape), type(s).__name__]
    for name in ("QuantumDetector", "QuantumDetectorMIB", "QuantumDetectorBuiltin"):
        s = hs.load(path, file_format=name)
        out[name] = s.metadata.General.FileIO.Number_0.io_plugin
    print(json.dumps(out))
"""


def test_startup_hook_imports_nothing_heavy(fresh_python, tmp_path):
    code = "import sys; print(sorted(m for m in ('numpy','rsciio','hyperspy') if m in sys.modules))"
    assert _run(fresh_python, code, cwd=tmp_path) == "[]"
    hooked = "import sys; print(any(type(f).__name__ == '_Finder' for f in sys.meta_path))"
    assert _run(fresh_python, hooked, cwd=tmp_path) == "True"


def test_plain_hs_load_uses_the_plugin(fresh_python, samples, tmp_path):
    out = json.loads(_run(fresh_python, LOAD.format(path=str(samples / "001_4x2_6bit.mib")), cwd=tmp_path))
    assert out["plain"] == ["rsciio_mib_plugin", [2, 4, 256, 256], "|u1"]
    assert out["lazy"][:2] == ["rsciio_mib_plugin", [2, 4, 256, 256]]
    assert out["QuantumDetector"] == out["QuantumDetectorMIB"] == "rsciio_mib_plugin"
    assert out["QuantumDetectorBuiltin"] == "rsciio.quantumdetector"


def test_autoload_can_be_turned_off(fresh_python, samples, tmp_path):
    code = f"""
        import hyperspy.api as hs
        s = hs.load({str(samples / "Quad_1_Frame_CounterDepth_12_Rows_256.mib")!r})
        print(s.metadata.General.FileIO.Number_0.io_plugin, s.data.dtype.str)
    """
    assert _run(fresh_python, code, {"RSCIIO_MIB_PLUGIN_AUTOLOAD": "0"}, cwd=tmp_path) == "rsciio.quantumdetector >u2"
    assert _run(fresh_python, code, cwd=tmp_path) == "rsciio_mib_plugin <u2"


def test_registration_order_with_imports(fresh_python, samples, tmp_path):
    # hyperspy first, then an explicit register(): still one mib claimant
    code = f"""
        import hyperspy.api as hs, rsciio, rsciio_mib_plugin
        rsciio_mib_plugin.register(); rsciio_mib_plugin.register()
        claim = [p["name"] for p in rsciio.IO_PLUGINS if "mib" in p["file_extensions"]]
        s = hs.load({str(samples / "001_4x2_6bit.mib")!r})
        print(claim, s.metadata.General.FileIO.Number_0.io_plugin)
    """
    assert (
        _run(fresh_python, code, {"RSCIIO_MIB_PLUGIN_AUTOLOAD": "0"}, cwd=tmp_path)
        == "['QuantumDetector'] rsciio_mib_plugin"
    )
