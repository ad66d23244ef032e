"""Process lifecycle shared by single-process and worker-mode `serve`: logging, signals, scrapes.

`ShutdownSignals`: the first SIGTERM/SIGINT sets `stop`, a later one sets `hurry` (skip the wait
for a final scrape). `ScrapeWatch` tells when a /metrics scrape began after a given instant;
`final_scrape` is the bounded wait both modes make on shutdown, skipped when nothing ever scraped
/metrics (no Prometheus is coming for the last figures).
"""

from __future__ import annotations

import logging
import os
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
    """SIGTERM/SIGINT -> `stop`; a later signal -> `hurry` (skip the wait for a final scrape).

    Signal-safe: the handler does nothing in Python (no lock, no logging, which could deadlock the
    interrupted main thread); the C-level wakeup fd carries the signal numbers to a watcher thread,
    which logs and sets the events. Signals that arrive together (make and timeout pass one on
    each) count as one; one arriving more than `REPEAT_S` after the first hurries the shutdown.
    """

    REPEAT_S = 1.0

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.hurry = threading.Event()
        self._first_at = 0.0

    def install(self) -> None:
        """Install the handlers (main thread only)."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _ignore)
        threading.Thread(target=self._watch, args=(read_fd,), name="genai-meter-signals", daemon=True).start()

    def _watch(self, read_fd: int) -> None:
        while True:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if not data:
                return
            self.received(data[0])

    def received(self, signum: int) -> None:
        """Act on one delivery of `signum` (a batch of simultaneous signals is one delivery)."""
        now = time.monotonic()
        if not self.stop.is_set():
            self._first_at = now
            log.info("genai-meter: %s received, shutting down", signal.Signals(signum).name)
            self.stop.set()
        elif now - self._first_at > self.REPEAT_S and not self.hurry.is_set():
            log.info("genai-meter: %s received again: not waiting any longer", signal.Signals(signum).name)
            self.hurry.set()


def _ignore(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler: nothing (the wakeup fd tells `ShutdownSignals`)."""


class ScrapeWatch:
    """Remembers when the latest /metrics scrape began (monotonic seconds)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._latest = float("-inf")

    def on_scrape(self, started: float) -> None:
        with self._cond:
            self._latest = max(self._latest, started)
            self._cond.notify_all()

    @property
    def ever_scraped(self) -> bool:
        with self._cond:
            return self._latest != float("-inf")

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


def final_scrape(watch: ScrapeWatch, counted_until: float, wait_s: float, hurry: threading.Event) -> None:
    """Wait up to `wait_s` for a scrape that began after `counted_until`, logging what happened; no
    wait when `wait_s` is 0 or when /metrics was never scraped since the start."""
    if wait_s <= 0:
        return
    if not watch.ever_scraped:
        log.info("genai-meter: /metrics was never scraped; not waiting for a final scrape")
        return
    log.info("genai-meter: waiting up to %.0f s for Prometheus to scrape the last figures "
             "(send the signal again, or set server.shutdown_scrape_wait_seconds: 0, to skip)", wait_s)
    if watch.wait_after(counted_until, wait_s, hurry):
        log.info("genai-meter: final scrape answered")
    else:
        log.warning("genai-meter: no scrape within %.0f s of shutdown; exiting anyway", wait_s)
