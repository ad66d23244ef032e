"""The two sides of a reconciliation row: what the provider reports and what the ledger holds.

A row is one UTC day x provider x model (`model_key`: dated and undated names matched), and per
project and API key where `reconcile.match_dimensions` names the ledger dimensions that carry the
provider's ids. `provider_sides` sums the stored report lines per row: usage from usage lines (their
folded classes kept), cost from the day's cost report where one covers it (`ReportRow.states_cost`),
else priced from the usage lines with the same `PriceBook` the ledger uses, in each line's price
context (service tier, batch, units). `ledger_sides` reads the ledger's daily series (exact integers).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from genai_meter.config_reconcile import MatchedGroup
from genai_meter.ledger.model import LedgerReader
from genai_meter.ledger.provider_rows import ReportRow
from genai_meter.periods import NS
from genai_meter.pricing import PriceBook
from genai_meter.reconcile.lines import TOKEN_CLASSES, ProviderLine
from genai_meter.reconcile.models import model_key
from genai_meter.records import TokenCounts

MATCHED: tuple[MatchedGroup, ...] = ("project", "api_key_id")  # the provider groups a row may also be split by


@dataclass(frozen=True, slots=True, order=True)
class RowKey:
    day: date
    provider: str
    model: str  # the model key ("" for costs the provider names no model for)
    project: str = ""
    api_key_id: str = ""


@dataclass(slots=True)
class ProviderSide:
    """The provider's figures of one row. `requests` None: its usage reports count no requests."""

    usage_lines: int = 0
    requests: int | None = None
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_CLASSES, 0))
    folded: set[str] = field(default_factory=set)
    units: Counter[str] = field(default_factory=Counter)
    models: set[str] = field(default_factory=set)
    tiers: Counter[str] = field(default_factory=Counter)  # "priority", "flex", "batch", ... -> requests (or lines)
    cost_pico: int | None = None  # USD; None: unknown (no price, or no cost stated in USD)
    cost_source: str = "none"  # cost_report, priced, partly_priced, unpriced, none
    unpriced: set[str] = field(default_factory=set)  # what a priced cost lacks: tier:<t>, batch, a unit, a model
    notes: list[str] = field(default_factory=list)

    @property
    def present(self) -> bool:
        return self.usage_lines > 0 or bool(self.cost_pico)


@dataclass(slots=True)
class LedgerSide:
    """The ledger's figures of one row (exact sums of its calls)."""

    calls: int = 0
    errors: int = 0
    calls_unpriced: int = 0  # no price matched, or invalid: their cost is not in cost_pico
    calls_upper_bound: int = 0  # cache tokens unknown (cost an upper bound) or no usage reported
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_CLASSES, 0))
    cost_pico: int = 0
    models: set[str] = field(default_factory=set)

    @property
    def cost_known(self) -> bool:
        return not (self.calls and self.calls_unpriced >= self.calls)


def row_key(line: ProviderLine, matched: Mapping[MatchedGroup, str]) -> RowKey:
    return RowKey(line.day, line.provider, line.model_key, line.project if "project" in matched else "",
                  line.api_key_id if "api_key_id" in matched else "")


def tier_label(line: ProviderLine) -> str:
    """The price context a line was billed in, in words ("" for the standard one)."""
    tier = "" if line.service_tier in ("", "default", "standard", "auto") else f"the {line.service_tier} tier"
    return " through ".join(part for part in (tier, "the batch API" if line.batch else "") if part)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def price_line(book: PriceBook, line: ProviderLine) -> tuple[int | None, tuple[str, ...]]:
    """(cost in 10^-12 USD, what it lacks) of a usage line priced at the start of its day in its price
    context: the five classes (the 1-hour part of cache writes at its own rate), its units, and the
    per-request fee times its requests. (None, ...) when no price matches its model."""
    at = _midnight(line.day)
    one_hour = line.cache_write_1h
    tokens = TokenCounts(line.input, line.cache_read, line.cache_write - one_hour, line.output, line.reasoning)
    tier, batch = line.service_tier, bool(line.batch)
    cost = book.price(line.provider, line.model, tokens, at, service_tier=tier, batch=batch, units=line.units_dict)
    if cost is None:
        return None, (f"model {line.model}",)
    picos = cost.picos()
    total = sum(picos[:5]) + sum(cost.unit_pico.values()) + picos[5] * (line.requests or 0)
    lacks = set(cost.unpriced_units)
    if one_hour:
        longer = book.price(line.provider, line.model, TokenCounts(cache_write=one_hour), at, service_tier=tier,
                            batch=batch, cache_write_1h=True)
        if longer is not None:
            total += sum(longer.picos()[:5])
            lacks |= set(longer.unpriced_units)
    return total, tuple(sorted(lacks))


def _add_usage(side: ProviderSide, line: ProviderLine) -> None:
    side.usage_lines += 1
    if line.requests is not None:
        side.requests = (side.requests or 0) + line.requests
    for name in TOKEN_CLASSES:
        side.tokens[name] += getattr(line, name)
    side.folded |= set(line.folded)
    side.units.update(line.units_dict)
    label = tier_label(line)
    if label:
        side.tiers[label] += line.requests if line.requests is not None else 1


def provider_sides(reports: Iterable[ReportRow], lines: Iterable[ProviderLine], book: PriceBook,
                   matched: Mapping[MatchedGroup, str]) -> dict[RowKey, ProviderSide]:
    """The provider side of every row the stored reports give (see the module docstring)."""
    cost_days = {(r.provider, r.day) for r in reports if r.states_cost}
    by_day: dict[tuple[str, date], list[ProviderLine]] = defaultdict(list)
    for line in lines:
        by_day[(line.provider, line.day)].append(line)
    sides: dict[RowKey, ProviderSide] = {}
    for (provider, day), day_lines in sorted(by_day.items()):
        currencies = sorted({x.currency for x in day_lines if x.cost_pico is not None and x.currency != "USD"})
        stated = (provider, day) in cost_days and not currencies
        for line in day_lines:
            side = sides.setdefault(row_key(line, matched), ProviderSide())
            if line.model:
                side.models.add(line.model)
            if "usage" in line.measures:
                _add_usage(side, line)
                if not stated:
                    _add_priced(side, book, line)
            if stated and line.cost_pico is not None:
                side.cost_pico = (side.cost_pico or 0) + line.cost_pico
                side.cost_source = "cost_report"
            if currencies and line.cost_pico is not None:
                side.notes.append(f"costs stated in {', '.join(currencies)}: priced from the usage instead")
        if stated:  # a cost report covers the day: a row it names no cost for cost nothing
            for line in day_lines:
                side = sides[row_key(line, matched)]
                if side.cost_pico is None:
                    side.cost_pico, side.cost_source = 0, "cost_report"
    return sides


def _add_priced(side: ProviderSide, book: PriceBook, line: ProviderLine) -> None:
    pico, lacks = price_line(book, line)
    side.unpriced |= set(lacks)
    if pico is None:
        side.cost_source = "unpriced" if side.cost_pico is None else "partly_priced"
        return
    side.cost_pico = (side.cost_pico or 0) + pico
    if side.cost_source in ("none", "priced"):
        side.cost_source = "partly_priced" if lacks else "priced"
    elif side.cost_source == "unpriced":
        side.cost_source = "partly_priced"


def ledger_sides(reader: LedgerReader, first: date, last: date, providers: Sequence[str],
                 filters: Mapping[str, Sequence[str]], matched: Mapping[MatchedGroup, str]) -> dict[RowKey, LedgerSide]:
    """The ledger side of every (day, provider, model key[, project, API key]) of days first..last (UTC)
    with calls of `providers`, under `filters` (a token's scope)."""
    if not providers:
        return {}
    dims = [matched[g] for g in MATCHED if g in matched]
    for group, dim in matched.items():
        if dim not in reader.fields():
            raise ValueError(f"reconcile.match_dimensions.{group}: {dim!r} is not a field of the ledger (known: "
                             f"{', '.join(reader.fields())})")
    start = int(_midnight(first).timestamp()) * NS
    end = int((_midnight(last) + timedelta(days=1)).timestamp()) * NS
    asked = {**{k: list(v) for k, v in filters.items()}, "provider": sorted(set(providers) & set(
        filters.get("provider", providers)))}
    series = reader.series(start, end, "1d", asked, ["provider", "model", *dims], 0)
    sides: dict[RowKey, LedgerSide] = {}
    for key, points in series.items():
        provider, model, *values = key
        found = dict(zip([g for g in MATCHED if g in matched], values, strict=True))
        for point in points:
            day = datetime.fromtimestamp(point.start_ns // NS, UTC).date()
            row = RowKey(day, provider, model_key(provider, model), found.get("project", ""),
                         found.get("api_key_id", ""))
            side = sides.setdefault(row, LedgerSide())
            t = point.totals
            side.calls += t.calls
            side.errors += t.errors
            side.calls_unpriced += t.unpriced + t.invalid
            side.calls_upper_bound += t.unmetered
            for name in TOKEN_CLASSES:
                side.tokens[name] += t.tokens.get(name, 0)
            side.cost_pico += t.cost_total_pico
            side.models.add(model)
    return sides
