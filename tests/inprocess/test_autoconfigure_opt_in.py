"""The in-process configurator is opt-in and never takes the app's tracing down (issue 8, item 13).

Each case runs the configurator as `opentelemetry-instrument` would (distro, then configurator) in
a fresh Python process, then ends one GenAI span and reports what it found as JSON."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

APP = r"""
import json, socket, sys
from opentelemetry import trace
from genai_meter.collector_processor.inprocess.autoconfigure import GenaiMeterConfigurator, GenaiMeterDistro
from genai_meter.collector_processor.inprocess.processor import CostSpanProcessor

GenaiMeterDistro().configure()
GenaiMeterConfigurator().configure()
provider = trace.get_tracer_provider()
active = getattr(provider, "_active_span_processor", None)
processors = list(getattr(active, "_span_processors", ()))
meter = next((p for p in processors if isinstance(p, CostSpanProcessor)), None)
span = trace.get_tracer("app").start_span("chat gpt-4o", attributes={
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100})
span.end()
port = int(sys.argv[1])
with socket.socket() as probe:
    listening = probe.connect_ex(("127.0.0.1", port)) == 0
print(json.dumps({
    "sdk_provider": type(provider).__module__.startswith("opentelemetry.sdk"),
    "metering": meter is not None,
    "counted": sum(v for (name, _), v in meter.metrics.samples().items() if name == "llm_requests_total")
               if meter else None,
    "span_recorded": span.is_recording() is False and span.get_span_context().is_valid,
    "metrics_listening": listening,
}))
"""


def run_app(port: int, **env: str) -> tuple[dict[str, object], str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GENAI_METER_", "OTEL_"))}
    done = subprocess.run([sys.executable, "-c", APP, str(port)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**base, "GENAI_METER_METRICS_LISTEN": f"127.0.0.1:{port}",
                                           "OTEL_TRACES_EXPORTER": "none", **env})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_installed_but_not_opted_in_changes_nothing() -> None:
    port = free_port()
    found, _ = run_app(port)
    assert found["metering"] is False and found["metrics_listening"] is False


def test_opted_in_it_meters_and_serves_metrics() -> None:
    port = free_port()
    found, _ = run_app(port, GENAI_METER_INPROCESS="true")
    assert found["sdk_provider"] is True and found["metering"] is True
    assert found["counted"] == 1 and found["metrics_listening"] is True


def test_a_port_clash_is_logged_and_tracing_goes_on() -> None:
    with socket.socket() as taken:  # e.g. `genai-meter serve` on the same machine
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        found, stderr = run_app(port, GENAI_METER_INPROCESS="true")
    assert found["sdk_provider"] is True and found["span_recorded"] is True  # tracing is up
    assert found["metering"] is True and found["counted"] == 1  # and counting goes on
    assert f"cannot serve /metrics on 127.0.0.1:{port}" in stderr and "GENAI_METER_METRICS_LISTEN" in stderr


def test_a_bad_config_leaves_tracing_up(tmp_path: Path) -> None:
    bad = tmp_path / "genai-meter.yaml"
    bad.write_text("limits: {max_tokens_per_call: -1}\n", encoding="utf-8")
    found, stderr = run_app(free_port(), GENAI_METER_INPROCESS="true", GENAI_METER_CONFIG=str(bad))
    assert found["sdk_provider"] is True and found["metering"] is False
    assert "in-process metering is off" in stderr and "max_tokens_per_call" in stderr


def test_opentelemetry_instrument_without_the_distro_says_what_is_missing() -> None:
    """`opentelemetry-instrument` with neither opentelemetry-distro nor the opt-in sets up nothing (upstream, in
    silence): the configurator names the one missing package."""
    tool = Path(sys.executable).parent / "opentelemetry-instrument"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GENAI_METER_", "OTEL_"))}
    done = subprocess.run([str(tool), sys.executable, "-c", "print('app ran')"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=base)
    assert done.returncode == 0 and done.stdout.strip() == "app ran", done.stderr
    lines = [line for line in done.stderr.splitlines() if "opentelemetry-distro" in line]
    assert len(lines) == 1 and "pip install opentelemetry-distro" in lines[0]
    assert "GENAI_METER_INPROCESS=true" in lines[0]
    opted = subprocess.run([str(tool), sys.executable, "-c", "print('app ran')"], cwd=ROOT, capture_output=True,
                           text=True, timeout=60, env={**base, "GENAI_METER_INPROCESS": "true",
                                                       "GENAI_METER_METRICS_LISTEN": "off",
                                                       "OTEL_TRACES_EXPORTER": "none"})
    assert opted.returncode == 0 and "opentelemetry-distro" not in opted.stderr, opted.stderr
