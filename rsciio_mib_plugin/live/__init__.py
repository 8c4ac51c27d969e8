"""Live data: the Merlin TCP ports (control, record, stream), files still being written (follow),
and a Merlin simulator.

Importing this package is cheap: its modules are imported when a name is first used."""

from .._lazy import lazy_names

_EXPORTS = {
    "record": ".recorder",
    "stream": ".acquisition",
    "follow": ".growing_file",
    "MerlinControl": ".control",
    "MerlinSimulator": ".simulator",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
