"""Quantum Detectors Merlin ``.mib`` reader as a RosettaSciIO / HyperSpy plugin.

Importing this package is cheap: numpy, dask and rsciio are imported only
when a function is first used, so the startup hook can import it.
"""

__version__ = "0.1.0"

from ._lazy import lazy_names

_EXPORTS = {
    "file_reader": "._api",
    "load": "._api",
    "load_mib_data": "._api",
    "parse_exposures": "._api",
    "parse_timestamps": "._api",
    "MIBProperties": ".reader.properties",
    "MIBFormatError": ".errors",
    "MIBWarning": ".errors",
    "MerlinCommandError": ".errors",
    "write_mib": ".format.write",
    "convert": ".conversion.archive",
    "watch_folder": ".conversion.watch",
    "write_references": ".reader.reference",
    "record": ".live.recorder",
    "stream": ".live.acquisition",
    "follow": ".live.growing_file",
    "MerlinControl": ".live.control",
    "MerlinSimulator": ".live.simulator",
    "file_writer": ".save",
    "register": ".registration",
    "unregister": ".registration",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
