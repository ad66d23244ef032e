"""`genai-meter demo` for a newcomer (issue 8, items 8, 9, 10, 15): stopped by several signals at
once it leaves nothing behind within 15 s and prints real totals; a busy port names the flag that
changes it; the demo budget is sized to be crossed in minutes (the crossing itself, with the web
page: test_demo_page.py). Real processes throughout (the demo, genai-meter serve and reports,
Prometheus, Alertmanager)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from genai_meter.config import Config
from genai_meter.pricing import PriceBook
from genai_meter.stack.budget import DEMO_BUDGET_MINUTES, LIVE_SERVICES, demo_budget, noon_offset, spend_per_call
from genai_meter.stack.processes import port_free
from tests.stack.demo_process import FLAGS, ROOT, Demo, alive, children_of
from tests.support.prometheus import free_port


@pytest.mark.slow
def test_simultaneous_signals_stop_everything_within_15_s_and_the_summary_has_totals() -> None:
    demo = Demo("--rate", "20")
    try:
        running = demo.wait_for(r"demo running \(files and logs in (\S+)\)", 90)
        assert running, demo.text()
        workdir = Path(re.search(r"files and logs in (\S+)\)", running[1])[1])
        assert workdir.is_dir()
        children = children_of(demo.process.pid)
        assert len(children) == 4, children  # serve, reports, Prometheus, Alertmanager
        time.sleep(8)  # some traffic, a scrape or two
        barrier = threading.Barrier(4)

        def term() -> None:
            barrier.wait()
            os.kill(demo.process.pid, signal.SIGTERM)

        senders = [threading.Thread(target=term) for _ in range(4)]
        first_signal = time.monotonic()
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        time.sleep(0.5)
        for _ in range(3):  # more, while it stops (make and timeout pass signals on)
            if demo.process.poll() is None:
                os.kill(demo.process.pid, signal.SIGTERM)
        code = demo.process.wait(20)
        took = time.monotonic() - first_signal
        assert code == 0 and took < 15, (code, took, demo.text())
        assert not [pid for pid in children if alive(pid)], demo.text()
        assert all(port_free("127.0.0.1", port) for port in demo.ports.values()), demo.ports
        assert not workdir.exists()
        summary = re.search(r"summary: (\d+) calls sent; Prometheus saw (\d+) requests, total cost \$([\d.]+)",
                            demo.text())
        assert summary, demo.text()
        assert int(summary[1]) > 50 and Decimal(summary[3]) > 0, demo.text()  # not "$0.0000"
    finally:
        demo.kill()


@pytest.mark.slow
def test_a_later_signal_hurries_the_stop() -> None:
    demo = Demo("--rate", "5")
    try:
        running = demo.wait_for(r"demo running \(files and logs in (\S+)\)", 90)
        assert running, demo.text()
        children = children_of(demo.process.pid)
        first = time.monotonic()
        os.kill(demo.process.pid, signal.SIGINT)
        time.sleep(2.0)  # a second Ctrl-C, later: skip the waits
        os.kill(demo.process.pid, signal.SIGINT)
        assert demo.process.wait(20) == 0
        assert time.monotonic() - first < 8.0, demo.text()  # without it: ~10 s (one more scrape first)
        assert not [pid for pid in children if alive(pid)]
        assert all(port_free("127.0.0.1", port) for port in demo.ports.values()), demo.ports
    finally:
        demo.kill()


def test_a_busy_port_names_the_flag_that_changes_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [sys.executable, "-m", "genai_meter", "demo", "--duration", "1"]
        for flag in FLAGS:
            argv += [flag, f"127.0.0.1:{port if flag == '--prometheus-listen' else free_port()}"]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"127.0.0.1:{port}" in done.stderr and "--prometheus-listen" in done.stderr, done.stderr


def test_the_demo_budget_is_reached_in_minutes_at_any_hour() -> None:
    config = Config()
    now = datetime(2026, 12, 1, 23, 50, tzinfo=UTC)  # ten minutes before a UTC day ends
    budget = demo_budget(config, rate=10.0, now=now)
    book = PriceBook.from_config(config)
    per_minute = spend_per_call(book, now) * 10 * 60
    assert per_minute > 0 and budget.limit_usd is not None
    assert budget.limit_usd / per_minute == pytest.approx(DEMO_BUDGET_MINUTES, rel=0.01)
    assert budget.thresholds[0] * DEMO_BUDGET_MINUTES / 100 <= 1  # the first alert after about a minute
    assert budget.period == "day" and budget.utc_offset == "-11:00"  # 12:50 there: the day has hours left
    for hour in range(24):
        offset = noon_offset(datetime(2026, 12, 1, hour, 30, tzinfo=UTC))
        local_hour = (hour + int(offset[:3])) % 24
        assert 12 <= local_hour <= 13, (hour, offset)
    assert demo_budget(config, rate=1.0, now=now).limit_usd < budget.limit_usd  # sized from the rate
    # the live services only: the synthetic history (services synthetic-*) does not count
    assert budget.match == {"service_name": LIVE_SERVICES} and LIVE_SERVICES == "~search-api|support-bot"
