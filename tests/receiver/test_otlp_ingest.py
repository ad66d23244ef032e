"""The receiver core in-process: counted once, exact costs, sampling, forwarding hand-off, the gate."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from genai_meter import contract
from genai_meter.collector_processor.metering import build_meter
from genai_meter.collector_processor.receiver.decode import MEDIA_PROTOBUF, decode
from genai_meter.collector_processor.receiver.dedup import SeenSpans
from genai_meter.collector_processor.receiver.gate import Gate
from genai_meter.collector_processor.receiver.ingest import Ingestor
from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics
from tests.support.otlp import gpt4o_cost, llm_attributes, make_request, make_span, new_ids, plain_span


class FakeForwarder:
    def __init__(self) -> None:
        self.submitted: list[tuple[object, dict]] = []

    def submit(self, request: object, counted: dict) -> None:
        self.submitted.append((request, counted))


def pipeline(config: Config | None = None, forwarder: object = None) -> tuple[Ingestor, UsageMetrics]:
    config = config or Config()
    metrics = UsageMetrics(config)
    meter = build_meter(config, [metrics])
    seen = SeenSpans(config.limits.dedup_window_seconds, config.limits.dedup_max_entries)
    return Ingestor(meter, metrics, seen, forwarder=forwarder), metrics


def export(ingestor: Ingestor, request: object):
    return ingestor.export(decode(request.SerializeToString(), MEDIA_PROTOBUF, full=ingestor.needs_full))


def requests(metrics: UsageMetrics, **labels: str) -> float:
    return sum(v for (name, ls), v in metrics.samples().items()
               if name == "llm_requests_total" and set(labels.items()) <= ls)


def cost(metrics: UsageMetrics, customer: str) -> Decimal:
    data = metrics.family("llm_cost_usd_total")
    i = data.labelnames.index("customer")
    return sum((v for k, v in zip(data.keys, data.values) if k[i] == customer), Decimal(0))


def test_counts_costs_and_self_metrics() -> None:
    ingestor, metrics = pipeline()
    spans = [make_span(llm_attributes(customer="acme", input_tokens=1000, output_tokens=200, cached=400))
             for _ in range(3)]
    outcome = export(ingestor, make_request(spans + [plain_span(), plain_span()]))
    assert (outcome.rejected, outcome.counted, outcome.duplicates) == (0, 3, 0)
    assert requests(metrics, customer="acme") == 3
    assert cost(metrics, "acme") == 3 * gpt4o_cost(1000, 200, 400)
    assert metrics.get(contract.SELF_SPANS_RECEIVED) == 5
    assert metrics.get(contract.SELF_SPANS_COUNTED) == 3
    assert metrics.get(contract.SELF_SPANS_SKIPPED, reason=contract.SKIP_NOT_LLM) == 2


def test_a_retried_request_counts_once() -> None:
    ingestor, metrics = pipeline()
    request = make_request([make_span(llm_attributes(customer="retry")) for _ in range(4)])
    export(ingestor, request)
    second = export(ingestor, request)
    assert (second.counted, second.duplicates) == (0, 4)
    assert requests(metrics, customer="retry") == 4
    assert metrics.get(contract.SELF_SPANS_DUPLICATE) == 4
    assert metrics.get(contract.SELF_SPANS_RECEIVED) == 8


def test_invalid_ids_are_a_partial_success() -> None:
    ingestor, metrics = pipeline()
    good = make_span(llm_attributes(customer="ids"))
    bad = make_span(llm_attributes(customer="ids"), ids=(b"\x01" * 16, b""))
    outcome = export(ingestor, make_request([good, bad]))
    assert outcome.rejected == 1
    assert "invalid_id" in outcome.message
    assert requests(metrics, customer="ids") == 1
    assert metrics.get(contract.SELF_SPANS_REJECTED, reason="invalid_id") == 1


def test_sampled_spans_are_counted_and_optionally_weighted() -> None:
    plain_ingestor, plain_metrics = pipeline()
    spans = [make_span(llm_attributes(customer="s"), trace_state="ot=th:c") for _ in range(2)]
    export(plain_ingestor, make_request(spans))
    assert plain_metrics.get(contract.SELF_SPANS_SAMPLED) == 2
    assert requests(plain_metrics, customer="s") == 2

    weighted = Config.model_validate({"sampling": {"weight_by_adjusted_count": True}})
    ingestor, metrics = pipeline(weighted)
    export(ingestor, make_request([make_span(llm_attributes(customer="s", input_tokens=1000, output_tokens=0),
                                             trace_state="ot=th:c")]))
    assert metrics.get(contract.SELF_SPANS_SAMPLED) == 1
    assert requests(metrics, customer="s") == 4  # p = 1/4
    assert cost(metrics, "s") == 4 * gpt4o_cost(1000, 0)


def test_forwarder_gets_the_request_and_the_counted_calls() -> None:
    forwarder = FakeForwarder()
    ingestor, _ = pipeline(forwarder=forwarder)
    ids = new_ids()
    request = make_request([make_span(llm_attributes(customer="fw"), ids=ids), plain_span()])
    export(ingestor, request)
    ((sent, counted),) = forwarder.submitted
    assert sent == request
    call, call_cost = counted[ids]
    assert call.model == "gpt-4o"
    assert call_cost is not None and call_cost.total == gpt4o_cost(1000, 200)
    export(ingestor, request)  # a duplicate is forwarded (it is the client's request) but not counted
    assert forwarder.submitted[1][1] == {}


def test_gate_caps_and_drains() -> None:
    gate = Gate(2)
    assert gate.try_enter() and gate.try_enter()
    assert not gate.try_enter()
    gate.leave()
    assert gate.try_enter()
    gate.close()
    assert not gate.try_enter()
    assert not gate.wait_idle(0.05)
    threading.Timer(0.05, lambda: (gate.leave(), gate.leave())).start()
    assert gate.wait_idle(5)


@pytest.mark.parametrize("n", [512])
def test_many_distinct_spans_in_one_request(n: int) -> None:
    ingestor, metrics = pipeline()
    spans = [make_span(llm_attributes(customer=f"bulk{i % 7}", input_tokens=i, output_tokens=1)) for i in range(n)]
    outcome = export(ingestor, make_request(spans))
    assert outcome.counted == n
    assert metrics.get(contract.SELF_SPANS_COUNTED) == n
    total = sum(cost(metrics, f"bulk{i}") for i in range(7))
    assert total == sum(gpt4o_cost(i, 1) for i in range(n))
