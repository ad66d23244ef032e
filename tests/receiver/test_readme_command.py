"""The README's app commands work with the Python SDK's defaults (issue 8, item 12): an app whose
SDK is configured from the environment only (OTEL_TRACES_EXPORTER=otlp, as opentelemetry-instrument
sets it) reaches a real `genai-meter serve` with exactly the variables the README gives."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.otlp import Serve, scrape, start_serve, total, wait_for

ROOT = Path(__file__).resolve().parents[2]

APP = r"""
from opentelemetry import trace
from opentelemetry.sdk._configuration import _OTelSDKConfigurator

_OTelSDKConfigurator().configure()  # the SDK's own set-up from OTEL_* variables, nothing else
span = trace.get_tracer("app").start_span("chat gpt-4o", attributes={
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100, "customer.id": "readme"})
span.end()
trace.get_tracer_provider().shutdown()  # flushes the batch
"""


def readme_commands() -> list[dict[str, str]]:
    """The environment of each `... python app.py` command in README.md's "A service" block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("**A service**", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        line = line.split("#", 1)[1] if line.lstrip().startswith("#") else line
        if "python app.py" not in line:
            continue
        words = shlex.split(line[line.index("OTEL_"):line.index("python app.py")])
        commands.append(dict(word.split("=", 1) for word in words))
    return commands


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    process = start_serve(None)
    try:
        yield process
    finally:
        process.stop()


def test_the_readme_gives_the_protocol_or_the_grpc_port() -> None:
    commands = readme_commands()
    assert commands, "no app command in README.md"
    for env in commands:
        endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
        protocol = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")  # the Python SDK's default
        assert endpoint.endswith(":4317") == (protocol == "grpc"), env


def test_the_readme_commands_reach_serve(serve: Serve) -> None:
    ports = {"4317": serve.grpc.rsplit(":", 1)[1], "4318": serve.http.rsplit(":", 1)[1]}
    commands = readme_commands()
    for n, env in enumerate(commands, 1):
        env = {k: re.sub(r":(4317|4318)\b", lambda m: ":" + ports[m[1]], v) for k, v in env.items()}
        base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        done = subprocess.run([sys.executable, "-c", APP], cwd=ROOT, capture_output=True, text=True, timeout=60,
                              env={**base, "OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "none",
                                   "OTEL_LOGS_EXPORTER": "none", **env})
        assert done.returncode == 0, done.stderr
        assert "Failed to export" not in done.stderr and "Transient error" not in done.stderr, done.stderr
        assert wait_for(lambda n=n: total(scrape(serve.metrics), "llm_requests_total", customer="readme") == n), env
