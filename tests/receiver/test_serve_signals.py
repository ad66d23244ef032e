"""Shutdown signals of `genai-meter serve`: signal-safe, simultaneous signals count as one, a later
one skips the wait for a final scrape, and the wait says what it waits for."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from genai_meter.collector_processor.receiver.lifecycle import ShutdownSignals
from tests.support.otlp import scrape, start_serve, write_config


def test_simultaneous_signals_count_as_one_and_a_later_one_hurries() -> None:
    signals = ShutdownSignals()
    signals.received(signal.SIGTERM)
    signals.received(signal.SIGTERM)  # make and timeout each pass the same stop on
    assert signals.stop.is_set() and not signals.hurry.is_set()
    signals._first_at -= ShutdownSignals.REPEAT_S + 0.1
    signals.received(signal.SIGINT)
    assert signals.hurry.is_set()


def test_serve_logs_its_scrape_wait_and_a_second_signal_ends_it(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", {"server": {"shutdown_scrape_wait_seconds": 60}})
    serve = start_serve(config)
    try:
        scrape(serve.metrics)  # a Prometheus is there: it will want the last figures
        for _ in range(3):  # three at once: one shutdown, not a hurry
            os.kill(serve.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while "waiting up to 60 s" not in serve.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "waiting up to 60 s" in serve.log()
        assert "shutdown_scrape_wait_seconds: 0" in serve.log()  # how to skip it
        assert serve.process.poll() is None  # still waiting for the scrape
        time.sleep(ShutdownSignals.REPEAT_S + 0.2)
        started = time.monotonic()
        serve.signal(signal.SIGTERM)
        assert serve.wait(10) == 0
        assert time.monotonic() - started < 5
        assert serve.log().count("received, shutting down") == 1
    finally:
        serve.stop(5)


def test_serve_never_scraped_does_not_wait_for_a_final_scrape(tmp_path: Path) -> None:
    """Ctrl-C on a serve no Prometheus ever scraped: nothing would come for the last figures."""
    config = write_config(tmp_path / "c.yaml", {"server": {"shutdown_scrape_wait_seconds": 30}})
    serve = start_serve(config)
    try:
        serve.signal(signal.SIGINT)
        assert serve.wait(10) == 0  # not the 30 s the config allows
        assert "never scraped; not waiting" in serve.log() and "waiting up to" not in serve.log()
    finally:
        serve.stop(5)
