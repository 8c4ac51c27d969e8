"""The simulator's control port: its parameters and the reply to each request (docs/format.md §12)."""

from __future__ import annotations

import math
from collections.abc import Callable

from ..format.control import parse_request, reply_text
from ..format.hdr_file import hdr_get, hdr_int
from ..reader.acquisition import Acquisition
from .detector import Detector

#: ``Trigger Start``/``Trigger Stop`` texts of the ``.hdr`` and their control-port codes (§12).
TRIGGERS = {
    "internal": 0,
    "rising edge": 1,
    "falling edge": 2,
    "rising edge lvds": 3,
    "falling edge lvds": 4,
    "soft trigger": 5,
}
SOFT_TRIGGER = 5


def _whole(low: int, high: int | None = None):
    def check(text: str) -> bool:
        text = text.strip()  # ASCII digits only ("²".isdigit() is true too), short enough for int()
        if not (text.isascii() and text.isdigit() and len(text) <= 18):
            return False
        return low <= int(text) and (high is None or int(text) <= high)

    return check


def _positive_number(text: str) -> bool:
    try:
        return math.isfinite(float(text)) and float(text) > 0
    except ValueError:
        return False


#: Settable parameters and what counts as in range (anything else: status 3).
SETTABLE = {
    "NUMFRAMESTOACQUIRE": _whole(0),
    "NUMFRAMESPERTRIGGER": _whole(1),
    "COUNTERDEPTH": lambda v: v.strip() in ("1", "6", "12", "24"),
    "ACQUISITIONTIME": _positive_number,
    "ACQUISITIONPERIOD": _positive_number,
    "CONTINUOUSRW": _whole(0, 1),
    "FILEFORMAT": _whole(0, 2),
    "TRIGGERSTART": _whole(0, 5),
    "TRIGGERSTOP": _whole(0, 5),
    "ENABLECOUNTER1": _whole(0, 2),
    "COLOURMODE": _whole(0, 1),
    "CHARGESUMMING": _whole(0, 1),
    "GAIN": _whole(0, 3),
    "FILEENABLE": _whole(0, 1),
    "RUNHEADLESS": _whole(0, 1),
    "USETIMESTAMPING": _whole(0, 1),
    "IMAGESPERFILE": _whole(0),
    **{f"THRESHOLD{i}": (lambda v: _positive_number(v) or v.strip() == "0") for i in range(8)},
}
READ_ONLY = ("DETECTORSTATUS", "SOFTWAREVERSION", "IMAGEX", "IMAGEY")
COMMANDS = ("STARTACQUISITION", "STOPACQUISITION", "SOFTTRIGGER", "ABORT", "RESET")


class ControlPort:
    """Answers ``GET``/``SET``/``CMD`` as the Merlin software does.

    Parameters
    ----------
    detector : Detector
        The state both ports share.
    parameters : dict
        The settings, as text, by name (:func:`initial_parameters`).
    image_shape : tuple of int
        ``(rows, cols)`` of a frame (``IMAGEY``, ``IMAGEX``).
    start : callable
        Starts an acquisition (``STARTACQUISITION``), once the detector is marked busy.
    """

    def __init__(self, detector: Detector, parameters: dict[str, str], image_shape, start: Callable[[], None]):
        self.detector, self.parameters, self.image_shape, self._start = detector, parameters, image_shape, start

    def answer(self, request: str) -> str:
        """The reply to one control request (what the control port sends back)."""
        kind, name, value = parse_request(request)
        if kind == "GET":
            with self.detector.lock:
                known = name in self.parameters or name in READ_ONLY
                current = self._get(name) if known else None
            return reply_text(kind, name, 0 if known else 2, current)
        if kind == "SET":
            return reply_text(kind, name, self._set(name, value))
        if kind == "CMD":
            return reply_text(kind, name, self.command(name))
        return f"{request},2"

    def _get(self, name: str) -> str:
        if name == "DETECTORSTATUS":
            return "1" if self.detector.acquiring else "0"
        if name == "IMAGEX":
            return str(self.image_shape[1])
        if name == "IMAGEY":
            return str(self.image_shape[0])
        return self.parameters[name]

    def _set(self, name: str, value: str) -> int:
        if name in READ_ONLY or (name not in SETTABLE and name not in self.parameters):
            return 2
        with self.detector.lock:
            if self.detector.acquiring:
                return 1
            if name in SETTABLE and not SETTABLE[name](value):
                return 3
            self.parameters[name] = value.strip()
        return 0

    def command(self, name: str) -> int:
        """Run command ``name``; its status code."""
        detector = self.detector
        if name not in COMMANDS:
            return 2
        if name in ("STOPACQUISITION", "ABORT"):
            detector.stop.set()
            return 0
        if name == "SOFTTRIGGER":
            detector.trigger.release()
            return 0
        if name == "RESET":
            return 1 if detector.acquiring else 0
        if not detector.begin():
            return 1
        self._start()
        return 0


def initial_parameters(prop: Acquisition, frames: int) -> dict[str, str]:
    """Control-port parameters as the served file's headers state them."""
    hdr, header = prop.hdr, prop.header

    def trigger(key: str) -> str:
        text = (hdr_get(hdr, key) or "internal").lower()
        return str(TRIGGERS.get(text, 0))

    exposure = f"{header.exposure_ms:g}"
    thresholds = list(header.thresholds) + [0.0] * 8
    counters = (hdr_get(hdr, "Active Counters") or "").lower()
    params = {
        "NUMFRAMESTOACQUIRE": str(frames),
        "NUMFRAMESPERTRIGGER": str(hdr_int(hdr, "Frames per Trigger") or 1),
        "COUNTERDEPTH": str(prop.counter_depth or hdr_int(hdr, "Counter Depth") or 12),
        "ACQUISITIONTIME": exposure,
        "ACQUISITIONPERIOD": exposure,
        "CONTINUOUSRW": "0",
        "FILEFORMAT": "2" if header.raw else "0",
        "TRIGGERSTART": trigger("Trigger Start"),
        "TRIGGERSTOP": trigger("Trigger Stop"),
        "ENABLECOUNTER1": "2" if "alternating" in counters else "1" if "counter 1" in counters else "0",
        "COLOURMODE": str(header.colour_mode),
        "CHARGESUMMING": "0",
        "GAIN": str(header.gain_mode),
        "FILEENABLE": "0",
        "RUNHEADLESS": "0",
        "USETIMESTAMPING": "1" if header.utc_timestamp else "0",
        "IMAGESPERFILE": "0",
        "SOFTWAREVERSION": hdr_get(hdr, "Software Version") or "rsciio-mib serve",
        **{f"THRESHOLD{i}": f"{t:g}" for i, t in enumerate(thresholds[:8])},
    }
    for key, name in (("ScanX", "SCANX"), ("ScanY", "SCANY")):
        if hdr_int(hdr, key):
            params[name] = str(hdr_int(hdr, key))
    return params
