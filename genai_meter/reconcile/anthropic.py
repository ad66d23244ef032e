"""Anthropic Admin API reports -> provider lines: the messages usage report and the cost report.

Both are `{"data": [buckets], "has_more", "next_page"}`, a bucket being
`{"starting_at", "ending_at", "results": [...]}` (RFC 3339, end exclusive).

- Usage (`/v1/organizations/usage_report/messages`): uncached_input_tokens *excludes* cache reads and
  writes, so it is `input` as is; cache_read_input_tokens is `cache_read`; cache_creation's
  ephemeral_5m_input_tokens + ephemeral_1h_input_tokens is `cache_write` (the 1h part also in
  `cache_write_1h`); output_tokens (thinking included: `folded` reasoning) is `output`;
  server_tool_use.web_search_requests is the unit `web_searches`. The report counts no requests.
- Cost (`/v1/organizations/cost_report`): `amount` is a decimal string in the currency's lowest
  units (cents: "123.45" USD is $1.2345), `currency` "USD". Priority Tier costs are not in it.

`service_tier` standard is genai-meter's "default"; batch is the default tier with `batch` true.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from genai_meter.money import to_pico
from genai_meter.reconcile.coverage import DayTiles, bucket_results
from genai_meter.reconcile.fields import Node, label
from genai_meter.reconcile.lines import ProviderLine, Source, units_of
from genai_meter.reconcile.models import model_key

PROVIDER = "anthropic"
USAGE = "anthropic.usage.messages"
COST = "anthropic.cost"
# server_tool_use counter -> LLMCall.units key
_TOOLS = {"web_search_requests": "web_searches"}


def is_report(node: Node) -> bool:
    """An Anthropic report: a `data` list of buckets keyed by RFC 3339 `starting_at`."""
    value = node.value
    if not isinstance(value, dict) or not isinstance(value.get("data"), list) or "object" in value:
        return False
    buckets = value["data"]
    return not buckets or (isinstance(buckets[0], dict) and "starting_at" in buckets[0])


def report_kind(report: Node) -> str | None:
    """USAGE or COST by the first result's fields; None for a report without results."""
    for bucket in report.req("data").items():
        for result in bucket.req("results").items():
            fields = result.mapping()
            if "uncached_input_tokens" in fields:
                return USAGE
            if "amount" in fields:
                return COST
            raise result.fail("neither a usage result (uncached_input_tokens) nor a cost result (amount)")
    return None


def read_report(report: Node, kind: str, source: Source, tiles: DayTiles) -> list[ProviderLine]:
    """The lines of one report page of `kind`; its buckets go to `tiles`."""
    read = _usage if kind == USAGE else _cost
    return [read(result, day, source) for day, result in bucket_results(report, PROVIDER, kind, tiles, unix=False)]


def _line(result: Node, day: date, source: Source) -> ProviderLine:
    model = label(result, "model")
    tier = label(result, "service_tier").lower()
    batch = None if not tier else tier == "batch"
    return ProviderLine(day=day, provider=PROVIDER, model=model, model_key=model_key(PROVIDER, model), source=source,
                        project=label(result, "workspace_id"), api_key_id=label(result, "api_key_id"),
                        service_tier="default" if tier in ("standard", "batch") else tier, batch=batch)


def _usage(result: Node, day: date, source: Source) -> ProviderLine:
    if "amount" in result.mapping():
        raise result.fail("a cost result in a usage report")
    creation = result.req("cache_creation")
    write_5m = creation.req("ephemeral_5m_input_tokens").integer()
    write_1h = creation.req("ephemeral_1h_input_tokens").integer()
    units: dict[str, int] = {}
    tools = result.opt("server_tool_use")
    if tools is not None:
        for name in sorted(tools.mapping()):
            if tools.opt(name) is not None:
                units[_TOOLS.get(name, f"custom.{name}")] = tools.req(name).integer()
    return replace(_line(result, day, source), input=result.req("uncached_input_tokens").integer(),
                   cache_read=result.req("cache_read_input_tokens").integer(), cache_write=write_5m + write_1h,
                   cache_write_1h=write_1h, output=result.req("output_tokens").integer(), folded=("reasoning",),
                   units=units_of(units))


def _cost(result: Node, day: date, source: Source) -> ProviderLine:
    if "uncached_input_tokens" in result.mapping():
        raise result.fail("a usage result in a cost report")
    cents = result.req("amount").amount()
    currency = result.req("currency").text().upper()
    item = label(result, "description") or " ".join(v for k in ("cost_type", "token_type") if (v := label(result, k)))
    return replace(_line(result, day, source), line_item=item, cost_pico=to_pico(cents.scaleb(-2)), currency=currency)

