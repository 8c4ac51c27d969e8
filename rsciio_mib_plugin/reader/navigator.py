"""Navigators: the image HyperSpy browses a scan with, supplied by the reader.

HyperSpy 2 takes a navigator from the signal's ``metadata._HyperSpy.navigator``
(``s.navigator``); a reader puts it there as ``_sig_navigator``, a signal
dictionary that ``hs.load`` turns into a signal (RosettaSciIO's MRC reader does
the same). With one, ``s.plot()`` computes nothing over the data: a lazy signal
reads only the pattern shown.
"""

from __future__ import annotations

import numpy as np

#: The navigators the reader computes: counts per frame, or counts in the bright-field aperture.
KINDS = ("total", "bright_field")


def check_navigator(navigator, arrays: bool = True) -> None:
    """``navigator`` is one of :data:`KINDS`, ``None`` or (with ``arrays``) an array, whose shape
    is checked with the data."""
    if navigator is None or (isinstance(navigator, str) and navigator in KINDS):
        return
    array = not isinstance(navigator, (str, bytes)) and (hasattr(navigator, "__array__") or isinstance(navigator, list))
    if not (arrays and array):
        allowed = "'total', 'bright_field', None" + (" or an array" if arrays else "")
        raise ValueError(f"`navigator` must be {allowed}, not {navigator!r}")


def navigator_dict(image, axes: list[dict], title: str, kind: str) -> dict:
    """The signal dictionary of a navigator: ``image`` over the scan, whose navigation ``axes``
    (the data's signal dictionary axes) become its signal axes."""
    image = np.asarray(image)
    nav = [dict(a, navigate=False) for a in axes if a["navigate"]]
    shape = tuple(a["size"] for a in nav)
    if image.dtype.kind not in "biuf":
        raise ValueError(f"`navigator` must hold numbers, not {image.dtype}")
    if image.shape != shape:
        raise ValueError(f"`navigator` of shape {image.shape} does not fit the navigation shape {shape} (array order)")
    for i, axis in enumerate(nav):
        axis["index_in_array"] = i
    return {
        "data": image,
        "axes": nav,
        "metadata": {"General": {"title": f"{title}: {kind.replace('_', ' ')}"}, "Signal": {"signal_type": ""}},
        "original_metadata": {},
    }


def attach(signal: dict, navigator: dict | None) -> dict:
    """``signal`` with ``navigator`` where HyperSpy takes it from (``s.navigator``)."""
    if navigator is not None:
        signal["metadata"].setdefault("_HyperSpy", {})["_sig_navigator"] = navigator
    return signal
