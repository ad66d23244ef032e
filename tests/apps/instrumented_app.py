"""A real LLM app for tests: the openai SDK, one real instrumentation, and genai-meter in process.

    python -m tests.apps.instrumented_app INSTRUMENTATION BASE_URL METRICS_LISTEN [--auto]

Makes two plain chat calls, one streamed chat call and one failing call against BASE_URL (a
FakeOpenAI server), prints "READY" and serves /metrics until stdin closes. INSTRUMENTATION is
openai_v2, openllmetry or openinference. With --auto the TracerProvider and the CostSpanProcessor
come from genai-meter's OTel configurator (as `opentelemetry-instrument` would load it), not from
code here.
"""

from __future__ import annotations

import sys

import openai


def instrumentor(name: str):
    if name == "openai_v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    elif name == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    elif name == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor
    else:
        raise SystemExit(f"unknown instrumentation {name!r}")
    return OpenAIInstrumentor()


def set_up_in_code(metrics_listen: str) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from genai_meter.collector_processor import CostSpanProcessor

    processor = CostSpanProcessor()
    processor.serve_metrics(metrics_listen)
    provider = TracerProvider(resource=Resource.create(
        {"service.name": "chatbot", "deployment.environment.name": "test", "project.id": "atlas"}))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)


def set_up_automatically() -> None:
    import os

    from genai_meter.collector_processor.inprocess.autoconfigure import GenaiMeterConfigurator, GenaiMeterDistro

    os.environ.setdefault("GENAI_METER_INPROCESS", "true")  # in-process metering is opt-in (docs/in-process.md)

    GenaiMeterDistro().configure()
    GenaiMeterConfigurator().configure()


def make_calls(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="test-key", max_retries=0)
    messages = [{"role": "user", "content": "hello"}]
    for _ in range(2):
        client.chat.completions.create(model="gpt-4o", messages=messages)
    stream = client.chat.completions.create(model="gpt-4o", messages=messages, stream=True,
                                            stream_options={"include_usage": True})
    for _ in stream:
        pass
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # answered 500
    except openai.APIStatusError:
        pass


def main(argv: list[str]) -> int:
    name, base_url, metrics_listen = argv[:3]
    if "--auto" in argv:
        set_up_automatically()
    else:
        set_up_in_code(metrics_listen)
    instrumentor(name).instrument()
    make_calls(base_url)
    print("READY", flush=True)
    sys.stdin.read()  # serve /metrics until the test closes our stdin
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
