"""The reconciliation scenario: three UTC days of OpenAI usage (the fifth, fourth and third day before
today), metered and reported.

Provider side: pages of `GET /v1/organization/usage/completions` in the shape the OpenAI API reference
documents (bucket objects with `start_time` / `end_time`, results `organization.usage.completions.result`
grouped by model, project_id, api_key_id, batch and service_tier; the same shape as
fixtures/openai_completions.json), written by `usage_page`.

Ledger side: real spans, the openai-v2 instrumentation's recorded chat span
(tests/fixtures/spans/recorded/openai_v2.chat.json) with its ids, end time and token counts set, metered
by the real `Meter` (conventions, then the real `PriceBook`) and stored by the real ledger writer.

The days, each call 20,000 input tokens of which 4,000 cached and 5,000 output tokens, `gpt-4o` in the
spans and `gpt-4o-2024-08-06` in the report (one model key):

| day | provider | ledger | cause |
|---|---|---|---|
| EXACT_DAY | 4 requests | 4 calls | exact, difference 0 |
| MISSING_DAY | 6 requests | 4 calls | unmetered_calls: 2 calls at $0.095 = $0.19 |
| TIER_DAY | 5 requests at the priority tier | 5 calls (spans without a tier) | price: 5 x ($0.1615 - $0.095) = $0.3325 |

Published gpt-4o rates per million tokens: standard $2.50 input, $1.25 cached input, $10 output; priority
$4.25, $2.125, $17. A call: 16,000 x 2.50 + 4,000 x 1.25 + 5,000 x 10 = $0.095 (priority: $0.1615).
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from genai_meter.collector_processor.metering.meter import Meter
from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics
from genai_meter.ledger import Entry
from tests.support.ledger_entries import store_entries
from tests.support.record_spans import read_fixture, span_record_from_dict

# The days before today, whenever the tests run: within the ledger's retention, never in the future (the
# receiver and the meter refuse spans outside those bounds), and inside the page's 7-day range.
TODAY = datetime.now(UTC).date()
EXACT_DAY, MISSING_DAY, TIER_DAY = (TODAY - timedelta(days=n) for n in (5, 4, 3))
BEFORE, AFTER = EXACT_DAY - timedelta(days=1), TIER_DAY + timedelta(days=1)  # no lines on either side
WINDOW_TO = AFTER + timedelta(days=1)  # `to` is exclusive: from=BEFORE&to=WINDOW_TO covers BEFORE..AFTER
INPUT, CACHED, OUTPUT = 20_000, 4_000, 5_000
CALL_USD = Decimal("0.095")
PRIORITY_CALL_USD = Decimal("0.1615")
# day -> (requests the provider reports, calls metered, tier)
CALLS = {EXACT_DAY: (4, 4, "default"), MISSING_DAY: (6, 4, "default"), TIER_DAY: (5, 5, "priority")}
MISSING_USD = 2 * CALL_USD  # 0.19
TIER_USD = 5 * (PRIORITY_CALL_USD - CALL_USD)  # 0.3325
REPORT_MODEL = "gpt-4o-2024-08-06"


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def result(requests: int, tier: str, *, model: str = REPORT_MODEL, project: str = "proj_abc") -> dict[str, Any]:
    """One `organization.usage.completions.result` of `requests` scenario calls."""
    return {"object": "organization.usage.completions.result", "input_tokens": INPUT * requests,
            "output_tokens": OUTPUT * requests, "input_cached_tokens": CACHED * requests, "input_audio_tokens": 0,
            "output_audio_tokens": 0, "num_model_requests": requests, "project_id": project, "user_id": None,
            "api_key_id": "key_123", "model": model, "batch": False, "service_tier": tier}


def usage_page(days: dict[date, list[dict[str, Any]]]) -> dict[str, Any]:
    """A completions usage page with one daily bucket per day (results as given)."""
    buckets = [{"object": "bucket", "start_time": int(midnight(day).timestamp()),
                "end_time": int((midnight(day) + timedelta(days=1)).timestamp()), "results": results}
               for day, results in sorted(days.items())]
    return {"object": "page", "data": buckets, "has_more": False, "next_page": None}


def scenario_page() -> dict[str, Any]:
    return usage_page({day: [result(requests, tier)] for day, (requests, _, tier) in CALLS.items()})


def costs_page() -> dict[str, Any]:
    """The scenario's days as `GET /v1/organization/costs` states them (the shape of fixtures/openai_costs.json):
    per day an input and an output line item of the model, the priority day at the priority rates."""
    buckets = []
    for day, (requests, _, tier) in sorted(CALLS.items()):
        rate = {"default": (Decimal("2.5"), Decimal("1.25"), Decimal(10)),
                "priority": (Decimal("4.25"), Decimal("2.125"), Decimal(17))}[tier]
        input_usd = requests * ((INPUT - CACHED) * rate[0] + CACHED * rate[1]) / 10**6
        output_usd = requests * OUTPUT * rate[2] / 10**6
        results = [{"object": "organization.costs.result", "amount": {"value": float(usd), "currency": "usd"},
                    "line_item": f"{REPORT_MODEL}, {what}", "project_id": "proj_abc"}
                   for what, usd in (("input", input_usd), ("output", output_usd))]
        buckets.append({"object": "bucket", "start_time": int(midnight(day).timestamp()),
                        "end_time": int((midnight(day) + timedelta(days=1)).timestamp()), "results": results})
    return {"object": "page", "data": buckets, "has_more": False, "next_page": None}


def write_page(path: Path, page: dict[str, Any]) -> Path:
    path.write_text(json.dumps(page, indent=1), encoding="utf-8")
    return path


def span(day: date, number: int, *, model: str = "gpt-4o", tokens: tuple[int, int, int] = (INPUT, CACHED, OUTPUT),
         hour: int = 10) -> dict[str, Any]:
    """The recorded openai-v2 chat span as call `number` of `day` (its own ids and end time)."""
    data = copy.deepcopy(read_fixture("recorded/openai_v2.chat"))
    ident = hashlib.sha256(f"reconcile-{day}-{number}-{model}".encode()).hexdigest()
    end = int((midnight(day) + timedelta(hours=hour, minutes=number)).timestamp()) * 10**9
    data.update(trace_id=ident[:32], span_id=ident[32:48], parent_span_id="", start_ns=end - 900_000_000, end_ns=end)
    attributes = data["attributes"]
    attributes["gen_ai.response.model"] = attributes["gen_ai.request.model"] = model
    attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"] = tokens[0], tokens[2]
    attributes["gen_ai.usage.cache_read.input_tokens"] = tokens[1]
    return data


def scenario_spans() -> list[dict[str, Any]]:
    return [span(day, i) for day, (_, metered, _) in sorted(CALLS.items()) for i in range(metered)]


def metered(config: Config, spans: list[dict[str, Any]]) -> list[Entry]:
    """`spans` through the real pipeline (conventions, then the real PriceBook), each a priced call."""
    meter = Meter(config, [UsageMetrics(config)])
    entries = []
    for data in spans:
        outcome = meter.assess(span_record_from_dict(data))
        assert isinstance(outcome, tuple), outcome
        call, cost = outcome
        assert cost is not None and not cost.unpriced_units, (call.model, cost)
        entries.append(Entry(call, cost))
    return entries


def store_spans(config: Config, spans: list[dict[str, Any]]) -> Decimal:
    """Meter `spans` and store them through the real writer of `config.ledger.url`; their total cost."""
    entries = metered(config, spans)
    store_entries(config, entries)
    return sum((entry.cost.total for entry in entries if entry.cost is not None), Decimal(0))
