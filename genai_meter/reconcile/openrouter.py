"""OpenRouter -> provider lines: the activity API (`GET /api/v1/activity`) and the activity CSV export.

- Activity JSON: `{"data": [items]}`, one item per UTC `date` and endpoint: model (slug),
  model_permaslug, endpoint_id, provider_name (the upstream that served it), usage (USD of
  OpenRouter credits), byok_usage_inference (USD billed to your own provider key), requests,
  prompt_tokens, completion_tokens, reasoning_tokens.
- CSV export: one row per generation (generation_id, created_at UTC, cost_total, tokens_prompt,
  tokens_completion, tokens_reasoning, tokens_cached, model_permaslug, provider_name, ...), summed
  here per day, model and upstream.

Reasoning tokens are included in completion tokens (OpenRouter bills them as completion), so
output = completion - reasoning. The activity API does not split cached prompt tokens out, so
cache reads and writes are `folded` into input there; the CSV's tokens_cached is `cache_read`
(cache writes stay folded). A line whose calls used your own key (BYOK) says so in `line_item`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from genai_meter.money import to_pico
from genai_meter.reconcile.coverage import DayTiles
from genai_meter.reconcile.fields import Node, count, label
from genai_meter.reconcile.lines import ProviderLine, ReconcileError, Source
from genai_meter.reconcile.models import model_key
from genai_meter.reconcile.table import Row

PROVIDER = "openrouter"
ACTIVITY = "openrouter.activity"
CSV_KIND = "openrouter.csv"
CSV_COLUMNS = frozenset({"generation_id", "created_at", "cost_total", "tokens_prompt", "tokens_completion",
                         "model_permaslug"})


def is_activity(node: Node) -> bool:
    """An activity response: a `data` list of items keyed by `date` and an endpoint."""
    value = node.value
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        return False
    items = value["data"]
    return bool(items) and isinstance(items[0], dict) and "date" in items[0] and "endpoint_id" in items[0]


def _output(where: Node | Row, completion: int, reasoning: int) -> int:
    if reasoning > completion:
        message = f"inconsistent counts: reasoning tokens ({reasoning}) exceed completion tokens ({completion})"
        raise where.fail(message) if isinstance(where, Node) else where.fail("tokens_reasoning", message)
    return completion - reasoning


def read_activity(response: Node, source: Source, tiles: DayTiles, days: Iterable[date] = ()) -> list[ProviderLine]:
    """The lines of an activity response; each date it holds (and each of `days`, asked for) is covered."""
    lines: list[ProviderLine] = []
    covered = set(days)
    for item in response.req("data").items():
        day = item.req("date").iso_day()
        covered.add(day)
        model = item.req("model").text()
        reasoning = count(item, "reasoning_tokens")
        byok = item.opt("byok_usage_inference")
        lines.append(ProviderLine(
            day=day, provider=PROVIDER, model=model, model_key=model_key(PROVIDER, model), source=source,
            served_by=label(item, "provider_name"), line_item="byok" if byok is not None and byok.amount() else "",
            requests=item.req("requests").integer(), input=item.req("prompt_tokens").integer(),
            output=_output(item, item.req("completion_tokens").integer(), reasoning), reasoning=reasoning,
            folded=("cache_read", "cache_write"), cost_pico=to_pico(item.req("usage").amount()), currency="USD"))
    for day in sorted(covered):
        tiles.add_day(PROVIDER, ACTIVITY, day, f"{response.path or 'data'} ({day})")
    return lines


class _Sum:
    __slots__ = ("cached", "completion", "cost", "prompt", "reasoning", "requests")

    def __init__(self) -> None:
        self.requests = self.prompt = self.cached = self.completion = self.reasoning = 0
        self.cost = Decimal(0)


def read_csv(rows: Iterable[Row], source: Source, tiles: DayTiles) -> list[ProviderLine]:
    """Lines summed per (day, model, upstream, BYOK or not) from the per-generation rows of an activity export."""
    sums: dict[tuple[date, str, str, bool], _Sum] = defaultdict(_Sum)
    for row in rows:
        model = row.text("model_permaslug")
        if not model:
            raise row.fail("model_permaslug", "missing")
        byok = bool(row.amount("byok_usage_inference"))
        total = sums[(row.day("created_at"), model, row.text("provider_name"), byok)]
        prompt, cached = row.integer("tokens_prompt"), row.integer("tokens_cached")
        if cached > prompt:
            raise row.fail("tokens_cached", f"inconsistent counts: cached tokens ({cached}) exceed tokens_prompt "
                                            f"({prompt})")
        completion, reasoning = row.integer("tokens_completion"), row.integer("tokens_reasoning")
        _output(row, completion, reasoning)
        cost = row.amount("cost_total")
        if cost is None:
            raise row.fail("cost_total", "missing")
        total.requests += 1
        total.prompt += prompt
        total.cached += cached
        total.completion += completion
        total.reasoning += reasoning
        total.cost += cost
    if not sums:
        raise ReconcileError(f"{source.file}: no generations in the export")
    lines = [ProviderLine(day=day, provider=PROVIDER, model=model, model_key=model_key(PROVIDER, model), source=source,
                          served_by=served_by, line_item="byok" if byok else "", requests=s.requests,
                          input=s.prompt - s.cached, cache_read=s.cached, output=s.completion - s.reasoning,
                          reasoning=s.reasoning, folded=("cache_write",), cost_pico=to_pico(s.cost), currency="USD")
             for (day, model, served_by, byok), s in sorted(sums.items())]
    for day in sorted({line.day for line in lines}):
        tiles.add_day(PROVIDER, CSV_KIND, day, f"rows of {day}")
    return lines
