"""Conversion of acquisitions into compressed archives (zspy, hspy) with summaries, in one pass."""

from .._lazy import lazy_names

_EXPORTS = {
    "convert": ".archive",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
