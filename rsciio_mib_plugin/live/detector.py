"""What the simulator's two ports share: whether an acquisition runs, and how to stop or trigger it."""

from __future__ import annotations

import socket
import threading

#: Seconds between looks at a stop flag: every wait of the simulator ends within this.
TICK = 0.2


class Detector:
    """The simulated detector's state, guarded by :attr:`lock`."""

    def __init__(self):
        self.lock = threading.Lock()
        self.closing = threading.Event()  # the simulator is shutting down
        self.stop = threading.Event()  # STOPACQUISITION / ABORT
        self.trigger = threading.Semaphore(0)  # SOFTTRIGGER
        self.acquiring = False
        self.acquisitions = 0

    def begin(self) -> bool:
        """Mark an acquisition as running; ``False`` if one already is (the detector is busy)."""
        with self.lock:
            if self.acquiring:
                return False
            self.acquiring = True
            self.stop.clear()
            self.trigger = threading.Semaphore(0)
            return True

    def end(self) -> int:
        """Mark the acquisition as over; its number."""
        with self.lock:
            self.acquiring = False
            self.acquisitions += 1
            return self.acquisitions

    def wait_trigger(self) -> bool:
        """Wait for a soft trigger; ``False`` when the acquisition is stopped first."""
        while not self.stop.is_set():
            if self.trigger.acquire(timeout=TICK):
                return True
        return False


def close_socket(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
