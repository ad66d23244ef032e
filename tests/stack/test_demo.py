"""`genai-meter demo` runs the local stack: every synthetic call reaches Prometheus and the ledger, alerts
reach the webhook."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support.prometheus import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_the_stack_and_reconciles(tmp_path: Path) -> None:
    ports = {flag: f"127.0.0.1:{free_port()}" for flag in (
        "--grpc-listen", "--http-listen", "--metrics-listen", "--prometheus-listen", "--alertmanager-listen",
        "--webhook-listen", "--reports-listen")}
    argv = [sys.executable, "-m", "genai_meter", "demo", "--duration", "35", "--rate", "20", "--dir", str(tmp_path)]
    for flag, address in ports.items():
        argv += [flag, address]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = re.search(r"summary: (\d+) calls sent; Prometheus saw (\d+) requests, total cost \$([\d.]+), "
                        r"(\d+) unpriced", done.stdout)
    assert summary, done.stdout
    sent, seen, cost, unpriced = int(summary[1]), int(summary[2]), float(summary[3]), int(summary[4])
    assert sent > 100 and seen == sent, done.stdout  # every call counted once, none lost on the way
    assert cost > 0 and 0 < unpriced < sent, done.stdout  # the self-hosted model has no price: flagged
    ledger = re.search(r"ledger: (\d+) live calls, total cost \$([\d.]+); (\d+) synthetic history calls", done.stdout)
    assert ledger, done.stdout
    assert int(ledger[1]) == sent, done.stdout  # the ledger holds every live call once, too
    assert abs(Decimal(ledger[2]) - Decimal(summary[3])) <= Decimal("0.0001"), done.stdout
    assert int(ledger[3]) > 5000, done.stdout  # ~30 days of synthetic history, seeded at the start
    # Prometheus -> Alertmanager -> the demo's webhook: alerts arrive (the watchdog, the unpriced model)
    assert re.search(r"alert firing +\w+ +LLM(Watchdog|UnpricedModel)", done.stdout), done.stdout
    assert (tmp_path / "deploy/grafana/dashboards").is_dir()
