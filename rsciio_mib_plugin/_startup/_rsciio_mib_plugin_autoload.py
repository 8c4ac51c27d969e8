"""Startup hook: register the plugin when RosettaSciIO builds its plugin table.

Installed as a top-level module beside the package (so interpreter start does
not import the package) and run by ``rsciio_mib_plugin.pth`` (and, on Pythons
with PEP 829, ``rsciio_mib_plugin.start``). It imports only the standard
library and installs a meta-path finder that waits for ``rsciio._io_plugins``;
right after that module has run, :func:`rsciio_mib_plugin.register` edits the
table. Nothing here may raise. ``RSCIIO_MIB_PLUGIN_AUTOLOAD=0`` turns it off.
"""

import os
import sys

_TARGET = "rsciio._io_plugins"


def install() -> None:
    """Arrange for :func:`register` to run when ``rsciio._io_plugins`` is imported."""
    try:
        if os.environ.get("RSCIIO_MIB_PLUGIN_AUTOLOAD", "1").strip().lower() in ("0", "false", "no", "off"):
            return
        if _TARGET in sys.modules:
            _register()
        elif not any(isinstance(f, _Finder) for f in sys.meta_path):
            sys.meta_path.insert(0, _Finder())
    except Exception:  # never break interpreter start
        pass


def _register() -> None:
    try:
        from rsciio_mib_plugin.registration import auto_register

        auto_register()
    except Exception:
        import logging

        logging.getLogger("rsciio_mib_plugin").debug("automatic registration failed", exc_info=True)


class _Finder:
    """Meta-path finder that wraps the loader of ``rsciio._io_plugins`` only."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _TARGET:
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        try:
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                spec = find(fullname, path, target) if find else None
                if spec is not None:
                    break
            else:
                return None
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _Loader(spec.loader)
            return spec
        except Exception:
            return None


class _Loader:
    """Runs the real loader, then registers the plugin."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _register()

    def __getattr__(self, name):
        return getattr(self._loader, name)
