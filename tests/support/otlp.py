"""Test helpers for the OTLP receiver: build requests with LLM spans, run `genai-meter serve` as a
subprocess on ephemeral loopback ports (stopped by PID), post bodies, scrape and parse /metrics.

Every wait is bounded; nothing here binds anything but 127.0.0.1.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0

# Published OpenAI prices for gpt-4o, USD per million tokens (what the tests compute costs from).
GPT4O_INPUT = Decimal("2.50")
GPT4O_CACHED_INPUT = Decimal("1.25")
GPT4O_OUTPUT = Decimal("10")


def gpt4o_cost(input_tokens: int, output_tokens: int, cached: int = 0) -> Decimal:
    """Expected USD cost of one gpt-4o call; `input_tokens` includes `cached` (semconv style)."""
    million = Decimal(1_000_000)
    return ((input_tokens - cached) * GPT4O_INPUT + cached * GPT4O_CACHED_INPUT
            + output_tokens * GPT4O_OUTPUT) / million


# ---------------------------------------------------------------------------------------------
# Building requests


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    return AnyValue(string_value=str(value))


def key_values(attrs: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def llm_attributes(*, customer: str | None = "acme", input_tokens: int = 1000, output_tokens: int = 200,
                   cached: int = 0, model: str = "gpt-4o", **extra: Any) -> dict[str, Any]:
    """Semconv attributes of one openai chat call (input includes cached tokens)."""
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
    }
    if cached:
        attrs["gen_ai.usage.cache_read.input_tokens"] = cached
    if customer is not None:
        attrs["customer.id"] = customer
    attrs.update(extra)
    return attrs


_ids = iter(range(1, 1 << 60))
_ids_lock = threading.Lock()


def new_ids() -> tuple[bytes, bytes]:
    """A fresh (trace id, span id) pair, unique within the test run."""
    with _ids_lock:
        n = next(_ids)
    return (os.getpid() << 80 | n).to_bytes(16, "big"), (n | 1 << 62).to_bytes(8, "big")


def make_span(attrs: Mapping[str, Any], *, name: str = "chat gpt-4o", ids: tuple[bytes, bytes] | None = None,
              start_ns: int | None = None, duration_ns: int = 1_500_000_000, trace_state: str = "") -> Span:
    trace_id, span_id = ids or new_ids()
    start = start_ns if start_ns is not None else time.time_ns() - duration_ns
    return Span(trace_id=trace_id, span_id=span_id, name=name, kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=start, end_time_unix_nano=start + duration_ns,
                attributes=key_values(attrs), trace_state=trace_state)


def make_request(spans: Iterable[Span], *, service: str = "checkout", environment: str = "prod",
                 scope: str = "opentelemetry.instrumentation.openai_v2") -> ExportTraceServiceRequest:
    resource = {"service.name": service, "deployment.environment.name": environment}
    rs = ResourceSpans()
    rs.resource.attributes.extend(key_values(resource))
    ss = ScopeSpans()
    ss.scope.name = scope
    ss.spans.extend(spans)
    rs.scope_spans.append(ss)
    return ExportTraceServiceRequest(resource_spans=[rs])


def plain_span(**kw: Any) -> Span:
    """A non-GenAI span (an HTTP server span)."""
    return make_span({"http.request.method": "GET", "url.path": "/checkout", "http.response.status_code": 200},
                     name="GET /checkout", **kw)


def _json_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # int64 as a decimal string, per OTLP/JSON
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_json_value(v) for v in value]}}
    return {"stringValue": str(value)}


def json_span(attrs: Mapping[str, Any], *, ids: tuple[bytes, bytes] | None = None,
              duration_ns: int = 1_500_000_000, name: str = "chat gpt-4o") -> dict[str, Any]:
    """One span as OTLP/JSON writes it: hex ids, string int64s, integer enums."""
    trace_id, span_id = ids or new_ids()
    start = time.time_ns() - duration_ns
    return {
        "traceId": trace_id.hex(), "spanId": span_id.hex(), "name": name, "kind": 3,
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + duration_ns),
        "attributes": [{"key": k, "value": _json_value(v)} for k, v in attrs.items()],
        "status": {},
    }


def json_request(spans: list[dict[str, Any]], *, service: str = "checkout", environment: str = "prod") -> dict:
    return {"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": service}},
            {"key": "deployment.environment.name", "value": {"stringValue": environment}}]},
        "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai_v2"}, "spans": spans}],
    }]}


# ---------------------------------------------------------------------------------------------
# HTTP


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def http_request(address: str, method: str, path: str, body: bytes | None = None,
                 headers: Mapping[str, str] | None = None, *, timeout: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None) -> Reply:
    """One request on a fresh connection; `address` is 'host:port'."""
    host, port = address.rsplit(":", 1)
    if ssl_context is not None:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(host, int(port), timeout=timeout,
                                                                        context=ssl_context)
    else:
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


def post_traces(address: str, request: ExportTraceServiceRequest | bytes, *, gzip_body: bool = False,
                content_type: str = "application/x-protobuf", headers: Mapping[str, str] | None = None,
                **kw: Any) -> Reply:
    body = request if isinstance(request, bytes) else request.SerializeToString()
    all_headers = {"Content-Type": content_type, **(headers or {})}
    if gzip_body:
        body = gzip.compress(body)
        all_headers["Content-Encoding"] = "gzip"
    return http_request(address, "POST", "/v1/traces", body, all_headers, **kw)


# ---------------------------------------------------------------------------------------------
# /metrics

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_exposition(text: str) -> Samples:
    """Prometheus text / OpenMetrics -> {(sample name, frozenset(labels)): value}."""
    out: Samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise AssertionError(f"unparseable exposition line: {line!r}")
        labels = frozenset((k, v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"))
                           for k, v in _LABEL.findall(match.group(3) or ""))
        out[(match.group(1), labels)] = float(match.group(4))
    return out


def scrape(address: str, *, openmetrics: bool = False, timeout: float = 10.0) -> Samples:
    accept = ("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
              if openmetrics else "text/plain;version=0.0.4")
    reply = http_request(address, "GET", "/metrics", headers={"Accept": accept}, timeout=timeout)
    assert reply.status == 200, reply
    return parse_exposition(reply.body.decode())


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples named `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


# ---------------------------------------------------------------------------------------------
# The service as a subprocess


def write_config(path: Path, data: Mapping[str, Any] | None = None) -> Path:
    path.write_text(yaml.safe_dump(dict(data or {})), encoding="utf-8")
    return path


_LISTENING = re.compile(r"genai-meter: (\S+) listening on (\S+)")


@dataclass
class Serve:
    """A running `genai-meter serve`; `addresses` maps otlp-grpc/otlp-http/metrics to host:port."""

    process: subprocess.Popen
    addresses: dict[str, str]
    lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    @property
    def grpc(self) -> str:
        return self.addresses["otlp-grpc"]

    @property
    def http(self) -> str:
        return self.addresses["otlp-http"]

    @property
    def metrics(self) -> str:
        return self.addresses["metrics"]

    def log(self) -> str:
        return "".join(self.lines)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signum)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, scrape /metrics as Prometheus would until it exits (its shutdown waits for one
        last scrape), SIGKILL after `timeout`; returns the exit code."""
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.process.poll() is None and time.monotonic() < deadline:
                if "metrics" in self.addresses:
                    try:
                        http_request(self.metrics, "GET", "/metrics", timeout=2.0)
                    except OSError:
                        pass
                time.sleep(0.1)
            if self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        return self.process.returncode


def start_serve(config_path: Path | None, *extra_args: str, env: Mapping[str, str] | None = None,
                timeout: float = START_TIMEOUT_S, wait_ready: bool = True) -> Serve:
    """Start `genai-meter serve` on ephemeral 127.0.0.1 ports and wait for its listeners."""
    args = [sys.executable, "-m", "genai_meter", "serve"]
    if config_path is not None:
        args += ["--config", str(config_path)]
    if "--grpc-listen" not in extra_args:
        args += ["--grpc-listen", "127.0.0.1:0"]
    if "--http-listen" not in extra_args:
        args += ["--http-listen", "127.0.0.1:0"]
    if "--metrics-listen" not in extra_args:
        args += ["--metrics-listen", "127.0.0.1:0"]
    args += list(extra_args)
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("GENAI_METER_CONFIG", None)
    process = subprocess.Popen(args, cwd=REPO, env=full_env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    serve = Serve(process, {})
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            serve.lines.append(line)
            match = _LISTENING.search(line)
            if match:
                serve.addresses[match.group(1)] = match.group(2)
            if "genai-meter: ready" in line:
                ready.set()
        ready.set()

    serve._reader = threading.Thread(target=read, daemon=True)
    serve._reader.start()
    if wait_ready:
        if not ready.wait(timeout) or process.poll() is not None:
            serve.stop(5)
            raise AssertionError(f"genai-meter serve did not start:\n{serve.log()}")
    return serve


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def otlp_json(obj: Any) -> bytes:
    return json.dumps(obj).encode()
