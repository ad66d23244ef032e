"""`genai-meter demo` runs the local stack: every synthetic call reaches Prometheus, alerts reach the webhook."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.prometheus import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_the_stack_and_reconciles(tmp_path: Path) -> None:
    ports = {flag: f"127.0.0.1:{free_port()}" for flag in (
        "--grpc-listen", "--http-listen", "--metrics-listen", "--prometheus-listen", "--alertmanager-listen",
        "--webhook-listen")}
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
    # Prometheus -> Alertmanager -> the demo's webhook: alerts arrive (the watchdog, the unpriced model)
    assert re.search(r"alert firing +\w+ +LLM(Watchdog|UnpricedModel)", done.stdout), done.stdout
    assert (tmp_path / "deploy/grafana/dashboards").is_dir()
