"""The package's shape: stages import only downwards (also `lint-imports` in CI), no import cycles,
public names importable without pulling in the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

import grimp  # import-linter's import graph (the tests extra installs it)

import rsciio_mib_plugin


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph("rsciio_mib_plugin")
    cycles = [
        (module, imported)
        for module in sorted(graph.modules)
        for imported in sorted(graph.find_modules_directly_imported_by(module))
        if graph.find_shortest_chain(importer=imported, imported=module)
    ]
    assert cycles == []


def test_stages_import_only_from_the_stages_below():
    graph = grimp.build_graph("rsciio_mib_plugin")
    order = ["sources", "format", "reader", "conversion", "live", "cli"]  # conversion and live: siblings
    for lower, package in enumerate(order):
        for higher in order[lower + 1 :]:
            if {package, higher} == {"conversion", "live"}:
                continue
            chain = graph.find_shortest_chain(
                importer=f"rsciio_mib_plugin.{package}", imported=f"rsciio_mib_plugin.{higher}", as_packages=True
            )
            assert chain is None, f"{package} imports {higher}: {chain}"


def test_public_names_are_there_without_importing_heavy_libraries():
    names = ["file_reader", "load", "convert", "record", "stream", "follow", "MerlinControl", "MerlinSimulator"]
    names += ["write_references", "write_mib", "MIBProperties"]
    assert set(names) <= set(rsciio_mib_plugin.__all__)
    heavy = ("hyperspy", "dask", "fsspec", "zarr", "matplotlib", "h5py")
    code = (
        "import sys, rsciio_mib_plugin, rsciio_mib_plugin.live, rsciio_mib_plugin.conversion; "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
    from rsciio_mib_plugin.live import MerlinSimulator, record

    assert record is rsciio_mib_plugin.record and MerlinSimulator is rsciio_mib_plugin.MerlinSimulator


def test_no_module_shadows_a_public_name():
    """A submodule named like a public function would replace it on its package once imported."""
    import importlib
    import pkgutil
    import types

    for module in pkgutil.walk_packages(rsciio_mib_plugin.__path__, "rsciio_mib_plugin."):
        if "_startup" not in module.name and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    import rsciio_mib_plugin.conversion as conversion
    import rsciio_mib_plugin.live as live

    for package in (rsciio_mib_plugin, live, conversion):
        for name in package.__all__:
            value = getattr(package, name)
            assert not isinstance(value, types.ModuleType), f"{package.__name__}.{name} is a module"
