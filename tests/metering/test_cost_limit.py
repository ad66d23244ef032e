"""A call priced at or above 2^63 * 10^-12 USD (a class or the total: the ledger's Int64) is invalid
(`cost_out_of_range`): flagged, counted in genai_meter_spans_rejected_total{reason}, stored in the ledger
with its reason, no tokens and no cost; never a processing error, never a failed ledger batch. A total of
2^63 - 1 is priced and stored exactly. The same through the full classifier, the call templates, the
bulk tally (C and pure) and the in-process processor."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from genai_meter import contract
from genai_meter.collector_processor import CostSpanProcessor
from genai_meter.collector_processor.metering import build_meter, tally
from genai_meter.collector_processor.receiver.decode import MEDIA_PROTOBUF, decode
from genai_meter.collector_processor.receiver.dedup import SeenSpans
from genai_meter.collector_processor.receiver.ingest import Ingestor
from genai_meter.collector_processor.receiver.spans import SpanExtractor
from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from genai_meter.money import from_pico
from tests.support.otlp import llm_attributes, make_request, make_span

LIMIT = 2**63
EDGE_FEE = LIMIT - 2_500_000  # pico; input costs 1000 pico a token, output 1 pico a token
# The repro's model: 10^15 USD per million tokens (10^21 pico a token) and a fee of 1.2e19 pico.
OVERRIDES = f"""\
- provider: self-hosted
  model: huge
  prices: {{input_mtok: "1000000000000000", output_mtok: "1000000000000000", per_request: "12345678.123456789"}}
- provider: self-hosted
  model: edge
  prices: {{input_mtok: "0.001", output_mtok: "0.000001", per_request: "{from_pico(EDGE_FEE)}"}}
"""


def config(tmp: Path) -> Config:
    path = tmp / "overrides.yaml"
    path.write_text(OVERRIDES, encoding="utf-8")
    return Config.model_validate({"pricing": {"overrides": str(path)}})


def _span(model: str, input_tokens: int, output_tokens: int, customer: str) -> object:
    return make_span(llm_attributes(customer=customer, model=model, input_tokens=input_tokens,
                                    output_tokens=output_tokens, **{"gen_ai.provider.name": "self-hosted"}))


def _cost(metrics: UsageMetrics, customer: str) -> Decimal:
    data = metrics.family("llm_cost_usd_total")
    i = data.labelnames.index("customer")
    return sum((v for k, v in zip(data.keys, data.values) if k[i] == customer), Decimal(0))


def _requests(metrics: UsageMetrics, customer: str) -> float:
    return sum(v for (name, labels), v in metrics.samples().items()
               if name == "llm_requests_total" and ("customer", customer) in labels)


@pytest.mark.parametrize("mode", ["classifier", "templates", "tally", "tally-pure"])
def test_out_of_range_costs_are_invalid_and_stored_as_such(tmp_path: Path, mode: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tally, "ACCELERATED", tally.ACCELERATED and mode != "tally-pure")
    cfg = config(tmp_path)
    metrics = UsageMetrics(cfg, serve=True)
    meter = build_meter(cfg, [metrics])
    if mode == "classifier":
        meter.templates = None
    meter.bulk = mode.startswith("tally")
    writer = SQLiteWriter(tmp_path / "ledger.db", cfg)
    ingestor = Ingestor(meter, metrics, SeenSpans(cfg.limits.dedup_window_seconds, cfg.limits.dedup_max_entries),
                        ledger=writer)
    # one request: calls at 2^63 - 1 (kept) and at 2^63 (invalid) of one template key, the repro's calls
    # (a class far above the limit, and a fee alone above it), and an ordinary call beside them
    spans = [_span("edge", 2499, 999, "edge"), _span("edge", 2500, 0, "edge"), _span("edge", 2499, 999, "edge"),
             _span("edge", 2500, 0, "edge"), _span("edge", 0, 0, "edge"), _span("huge", 10, 0, "huge"),
             _span("huge", 0, 0, "huge"), _span("edge", 2499, 1000, "edge"),
             make_span(llm_attributes(customer="plain", input_tokens=1000, output_tokens=200))]
    outcome = ingestor.export(decode(make_request(spans).SerializeToString(), MEDIA_PROTOBUF,
                                     full=ingestor.needs_full))
    writer.close()
    assert metrics.get(contract.SELF_PROCESSING_ERRORS) == 0
    assert metrics.get(contract.SELF_SPANS_REJECTED, reason=contract.INVALID_COST) == 5
    assert (outcome.rejected, outcome.counted) == (0, 9)  # as for implausible counts: stored, not refused
    assert _requests(metrics, "edge") == 3 and _requests(metrics, "huge") == 0 and _requests(metrics, "plain") == 1
    assert _cost(metrics, "edge") == from_pico(2 * (LIMIT - 1) + EDGE_FEE)  # exact, to the last pico
    rows = sqlite3.connect(tmp_path / "ledger.db").execute(
        "SELECT l.model, c.invalid, c.unpriced, c.t_input, c.t_output, c.c_input, c.c_output, c.c_request, "
        "c.list_cost FROM calls c JOIN labelsets l ON l.id = c.labelset ORDER BY c.end_ns, c.span_id").fetchall()
    assert len(rows) == 9
    invalid = [r for r in rows if r[1]]
    assert sorted(r[0] for r in invalid) == ["edge", "edge", "edge", "huge", "huge"]
    assert {r[1:] for r in invalid} == {(contract.INVALID_COST, 0, 0, 0, 0, 0, 0, 0)}
    edge = sorted(r[3:] for r in rows if r[0] == "edge" and not r[1])
    assert edge == [(0, 0, 0, 0, EDGE_FEE, EDGE_FEE),
                    (2499, 999, 2_499_000, 999, EDGE_FEE, LIMIT - 1), (2499, 999, 2_499_000, 999, EDGE_FEE, LIMIT - 1)]
    assert [r[1] for r in rows if r[0] == "gpt-4o"] == [""]


def test_the_meter_flags_a_copy_and_keeps_the_template_valid(tmp_path: Path) -> None:
    """The first call of a template key becomes the key's template: flagging it must not flag the template."""
    cfg = config(tmp_path)
    metrics = UsageMetrics(cfg, serve=True)
    meter = build_meter(cfg, [metrics])
    meter.bulk = False
    extractor = SpanExtractor()
    request = make_request([_span("edge", 2500, 0, "t"), _span("edge", 1, 0, "t")])
    candidates = extractor.extract(decode(request.SerializeToString(), MEDIA_PROTOBUF).lean).candidates
    first, second = (meter.assess(span) for span in candidates)
    assert isinstance(first, tuple) and isinstance(second, tuple)
    assert first[0].invalid == contract.INVALID_COST and first[1] is None
    assert first[0].tokens.input == 0  # an invalid call carries no tokens, as for implausible counts
    assert second[0].invalid == "" and second[1] is not None and second[1].pico == (1000, 0, 0, 0, 0, EDGE_FEE)
    assert meter.templates is not None
    assert all(not t.invalid for t in meter.templates._templates.values() if not isinstance(t, bool))



def test_the_in_process_processor_flags_them_too(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    metrics = UsageMetrics(cfg)
    provider = TracerProvider()
    provider.add_span_processor(CostSpanProcessor(cfg, metrics=metrics))
    tracer = provider.get_tracer("app")
    for input_tokens, output_tokens in ((2499, 999), (2500, 0), (2499, 999), (2500, 0), (10**8, 10**8)):
        with tracer.start_as_current_span("chat edge", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "self-hosted", "gen_ai.request.model": "edge",
                "gen_ai.usage.input_tokens": input_tokens, "gen_ai.usage.output_tokens": output_tokens,
                "customer.id": "app"}):
            pass
    provider.shutdown()
    assert metrics.get(contract.SELF_PROCESSING_ERRORS) == 0
    assert metrics.get(contract.SELF_SPANS_REJECTED, reason=contract.INVALID_COST) == 3
    assert _requests(metrics, "app") == 2
    assert _cost(metrics, "app") == from_pico(2 * (LIMIT - 1))
