"""Public names of a package imported when first used (standard library only: the startup hook
imports the root package)."""

from __future__ import annotations

import sys


def lazy_names(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps a name to the relative module holding it."""

    def __getattr__(name):
        if name in exports:
            from importlib import import_module

            value = getattr(import_module(exports[name], package), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(sys.modules[package].__all__)

    return __getattr__, __dir__
