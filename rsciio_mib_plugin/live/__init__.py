"""Live data: the Merlin TCP ports (control, record, stream), files still being written (follow),
and a Merlin simulator.

Importing this package is cheap: its modules are imported when a name is first used."""

_EXPORTS = {
    "record": ".recorder",
    "stream": ".acquisition",
    "follow": ".growing_file",
    "MerlinControl": ".control",
    "MerlinSimulator": ".simulator",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        from importlib import import_module

        value = getattr(import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
