"""Process lifecycle shared by single-process and worker-mode `serve`: logging, signals, scrapes.

`ShutdownSignals`: the first SIGTERM/SIGINT sets `stop`, a later one sets `hurry` (skip the wait
for a final scrape). `ScrapeWatch` tells when a /metrics scrape began after a given instant.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from types import FrameType

log = logging.getLogger("genai_meter")


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger("genai_meter")
    if not any(getattr(h, "_genai_meter", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._genai_meter = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def log_listening(name: str, address: str) -> None:
    log.info("genai-meter: %s listening on %s", name, address)


class ShutdownSignals:
    """SIGTERM/SIGINT -> `stop` event; a second signal sets `hurry` (skip the scrape wait)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.hurry = threading.Event()

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set():
            self.hurry.set()
        else:
            log.info("genai-meter: %s received, shutting down", signal.Signals(signum).name)
        self.stop.set()


class ScrapeWatch:
    """Remembers when the latest /metrics scrape began (monotonic seconds)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._latest = float("-inf")

    def on_scrape(self, started: float) -> None:
        with self._cond:
            self._latest = max(self._latest, started)
            self._cond.notify_all()

    def wait_after(self, since: float, timeout_s: float, hurry: threading.Event | None = None) -> bool:
        """Wait for a scrape that began at or after `since`; False when `timeout_s` passed first."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._latest < since:
                left = deadline - time.monotonic()
                if left <= 0 or (hurry is not None and hurry.is_set()):
                    return False
                self._cond.wait(min(left, 0.1))
            return True
