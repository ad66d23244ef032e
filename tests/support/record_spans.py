"""Record real spans from the real OpenAI instrumentations installed in the venv, as JSON fixtures.

Each instrumentation (opentelemetry-instrumentation-openai-v2, OpenLLMetry's
opentelemetry-instrumentation-openai, openinference-instrumentation-openai) patches the same openai
SDK methods, so each one runs alone in a fresh subprocess: the child instruments the openai SDK with
an in-memory exporter, runs the scenarios against a `FakeOpenAI` started by the parent, uninstruments
and prints the finished spans as JSON.

    python -m tests.support.record_spans            # re-record every fixture under tests/fixtures/spans/
    python -m tests.support.record_spans openai_v2  # one instrumentation

Fixture format (one span per file, also used by the hand-written fixtures): ``name``, ``scope_name``,
``status`` (UNSET / OK / ERROR), ``start_ns``, ``end_ns``, ``attributes``, ``resource``, ``events``
(``[{"name", "time_ns"}]``), optional hex ``trace_id`` / ``span_id`` / ``parent_span_id`` and an
optional free-text ``comment``. `load_fixture` turns one into a
`genai_meter.records.SpanRecord`. Message content capture is switched off in every instrumentation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from genai_meter.records import SpanRecord
from tests.support.fake_openai import FakeOpenAI

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_DIR = REPO_ROOT / "tests" / "fixtures" / "spans"

# instrumentation key -> (module, class) of its instrumentor
INSTRUMENTATIONS: dict[str, tuple[str, str]] = {
    "openai_v2": ("opentelemetry.instrumentation.openai_v2", "OpenAIInstrumentor"),
    "openllmetry": ("opentelemetry.instrumentation.openai", "OpenAIInstrumentor"),
    "openinference": ("openinference.instrumentation.openai", "OpenAIInstrumentor"),
}
SCENARIOS: tuple[str, ...] = ("chat", "chat_stream", "embeddings", "chat_error", "chat_flex", "chat_priority",
                               "chat_audio", "images")
# Scenarios some instrumentations make no span for (openai-v2 and OpenLLMetry do not trace image generation)
OPTIONAL_SCENARIOS = frozenset({"images"})
FLEX_MODEL, AUDIO_MODEL, IMAGE_MODEL = "gpt-5-mini", "gpt-audio", "dall-e-3"
CHAT_MODEL = "gpt-4o"
EMBEDDING_MODEL = "text-embedding-3-small"
FAILING_MODEL = "gpt-4o-fails"  # FakeOpenAI answers HTTP 500 for it
RESOURCE = {"service.name": "fixture-app", "deployment.environment.name": "test", "project.id": "proj-7"}
SPAN_ATTRIBUTES = {"customer.id": "acme", "feature.id": "search"}  # set on a parent span, see _run_scenario

# Switch off prompt/completion capture in every instrumentation.
_NO_CONTENT_ENV = {
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false",
    "TRACELOOP_TRACE_CONTENT": "false",
    "OPENINFERENCE_HIDE_INPUTS": "true",
    "OPENINFERENCE_HIDE_OUTPUTS": "true",
}


# -- fixtures -----------------------------------------------------------------------------------

def fixture_path(name: str) -> Path:
    """The file of fixture `name` (relative to tests/fixtures/spans, ``.json`` optional)."""
    return FIXTURE_DIR / (name if name.endswith(".json") else name + ".json")


def read_fixture(name: str) -> dict[str, Any]:
    """The raw JSON dict of fixture `name`."""
    return json.loads(fixture_path(name).read_text(encoding="utf-8"))


def span_record_from_dict(data: dict[str, Any]) -> SpanRecord:
    """A `SpanRecord` from a fixture dict (JSON lists become tuples, as OTel attribute values)."""
    ids: dict[str, bytes] = {}
    if data.get("parent_span_id") and "parent_span_id" in _SPAN_RECORD_FIELDS:
        ids["parent_span_id"] = bytes.fromhex(data["parent_span_id"])
    return SpanRecord(
        **ids,  # type: ignore[arg-type]
        name=data["name"],
        attributes={k: _attr_value(v) for k, v in data.get("attributes", {}).items()},
        resource={k: _attr_value(v) for k, v in data.get("resource", {}).items()},
        start_ns=int(data.get("start_ns", 0)),
        end_ns=int(data.get("end_ns", 0)),
        is_error=data.get("status") == "ERROR",
        scope_name=data.get("scope_name", ""),
        trace_id=bytes.fromhex(data.get("trace_id", "")),
        span_id=bytes.fromhex(data.get("span_id", "")),
        events=tuple((e["name"], int(e["time_ns"])) for e in data.get("events", ())),
    )


_SPAN_RECORD_FIELDS = frozenset(getattr(SpanRecord, "__dataclass_fields__", {}))


def load_fixture(name: str) -> SpanRecord:
    """Fixture `name` (e.g. ``"recorded/openai_v2.chat"`` or ``"vercel/v5_do_generate"``) as a SpanRecord."""
    return span_record_from_dict(read_fixture(name))


def fixture_names(subdir: str = "") -> list[str]:
    """Names of every fixture below `subdir`, sorted, for `load_fixture`."""
    base = FIXTURE_DIR / subdir if subdir else FIXTURE_DIR
    return sorted(p.relative_to(FIXTURE_DIR).as_posix()[: -len(".json")] for p in base.rglob("*.json"))


def _attr_value(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def span_to_dict(span: Any) -> dict[str, Any]:
    """A fixture dict from an OTel SDK ReadableSpan."""
    context, parent = span.context, span.parent
    return {
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": f"{parent.span_id:016x}" if parent is not None else "",
        "name": span.name,
        "scope_name": span.instrumentation_scope.name if span.instrumentation_scope else "",
        "status": span.status.status_code.name,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "attributes": {k: _json_value(v) for k, v in (span.attributes or {}).items()},
        "resource": {k: _json_value(v) for k, v in span.resource.attributes.items()},
        "events": [{"name": e.name, "time_ns": e.timestamp} for e in span.events],
    }


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, (tuple, list)) else value


def write_fixture(name: str, data: dict[str, Any]) -> Path:
    """Write fixture `name` (sorted keys, indent 2, trailing newline)."""
    path = fixture_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


# -- recording (parent side) --------------------------------------------------------------------

def record_live(instrumentation: str, *, timeout_s: float = 120.0) -> dict[str, list[dict[str, Any]]]:
    """Run `instrumentation` in a subprocess against a fresh FakeOpenAI; scenario -> its GenAI spans."""
    if instrumentation not in INSTRUMENTATIONS:
        raise ValueError(f"unknown instrumentation {instrumentation!r} (known: {', '.join(INSTRUMENTATIONS)})")
    env = {**os.environ, **_NO_CONTENT_ENV, "PYTHONPATH": _pythonpath()}
    with FakeOpenAI(failing_models={FAILING_MODEL: 500}) as server:
        proc = subprocess.run(
            [sys.executable, "-m", "tests.support.record_spans", "--child", instrumentation,
             "--base-url", server.base_url],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"recording {instrumentation} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def record_fixtures(instrumentations: list[str] | None = None) -> list[Path]:
    """Re-record the fixtures of `instrumentations` (default: all) into tests/fixtures/spans/recorded/."""
    written: list[Path] = []
    for name in instrumentations or list(INSTRUMENTATIONS):
        for scenario, spans in record_live(name).items():
            if not spans and scenario in OPTIONAL_SCENARIOS:
                continue
            if len(spans) != 1:
                raise RuntimeError(f"{name} {scenario}: expected one GenAI span, got {len(spans)}")
            written.append(write_fixture(recorded_name(name, scenario), spans[0]))
    return written


def recorded_name(instrumentation: str, scenario: str) -> str:
    """The fixture name of one recorded scenario."""
    return f"recorded/{instrumentation}.{scenario}"


def _pythonpath() -> str:
    current = os.environ.get("PYTHONPATH")
    return f"{REPO_ROOT}{os.pathsep}{current}" if current else str(REPO_ROOT)


# -- recording (child side) ---------------------------------------------------------------------

def _child(instrumentation: str, base_url: str) -> int:
    import importlib

    import openai
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider(resource=Resource.create(RESOURCE))
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    module_name, class_name = INSTRUMENTATIONS[instrumentation]
    instrumentor = getattr(importlib.import_module(module_name), class_name)()
    instrumentor.instrument(tracer_provider=provider)
    tracer = provider.get_tracer("fixture-app")
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for scenario in SCENARIOS:
            exporter.clear()
            # The app's own parent span carries attribution attributes; only the LLM span is kept.
            with tracer.start_as_current_span("app.request", attributes=SPAN_ATTRIBUTES):
                _run_scenario(client, scenario)
            results[scenario] = [span_to_dict(s) for s in exporter.get_finished_spans()
                                 if s.instrumentation_scope is None or s.instrumentation_scope.name != "fixture-app"]
    finally:
        instrumentor.uninstrument()
    print(json.dumps(results))
    return 0


def _run_scenario(client: Any, scenario: str) -> None:
    import openai

    messages = [{"role": "user", "content": "Say hello."}]
    if scenario == "chat":
        client.chat.completions.create(model=CHAT_MODEL, messages=messages)
    elif scenario == "chat_stream":
        stream = client.chat.completions.create(model=CHAT_MODEL, messages=messages, stream=True,
                                                stream_options={"include_usage": True})
        for _ in stream:
            pass
    elif scenario == "embeddings":
        client.embeddings.create(model=EMBEDDING_MODEL, input=["hello world"])
    elif scenario == "chat_error":
        try:
            client.chat.completions.create(model=FAILING_MODEL, messages=messages)
        except openai.APIStatusError:
            pass
    elif scenario == "chat_flex":
        client.chat.completions.create(model=FLEX_MODEL, messages=messages, service_tier="flex")
    elif scenario == "chat_priority":
        client.chat.completions.create(model=CHAT_MODEL, messages=messages, service_tier="priority")
    elif scenario == "chat_audio":
        client.chat.completions.create(model=AUDIO_MODEL, messages=messages, modalities=["text", "audio"],
                                       audio={"voice": "alloy", "format": "wav"})
    elif scenario == "images":
        client.images.generate(model=IMAGE_MODEL, prompt="a lighthouse", size="1024x1024", quality="hd", n=2)
    else:  # pragma: no cover - SCENARIOS is closed
        raise ValueError(scenario)


def main(argv: list[str] | None = None) -> int:
    """CLI: re-record fixtures (parent), or run one instrumentation (``--child``, internal)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instrumentations", nargs="*", help=f"any of {', '.join(INSTRUMENTATIONS)} (default: all)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, args.base_url)
    for path in record_fixtures(args.instrumentations or None):
        print(path.relative_to(REPO_ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
