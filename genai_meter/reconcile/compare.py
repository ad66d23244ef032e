"""The comparison: rows of UTC day x provider x model with both sides, the difference and its cause.

`reconcile(...)` compares the days a stored provider report covers (a day no report covers is not
compared: the provider's figures are unknown there) with the ledger's calls of those days. Money is
exact: integers of 10^-12 USD, the difference the provider's cost minus the ledger's, its share in
percent of the provider's cost (6 places, half-even). `Reconciliation.as_json()` is the answer of
`GET /api/v1/reconciliation` and of `genai-meter reconcile report --json`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from genai_meter.config_reconcile import ReconcileConfig
from genai_meter.ledger.model import LedgerReader
from genai_meter.money import to_pico, usd_text
from genai_meter.pricing import PriceBook
from genai_meter.reconcile.causes import CAUSES, decide
from genai_meter.reconcile.lines import TOKEN_CLASSES
from genai_meter.reconcile.sides import LedgerSide, ProviderSide, RowKey, ledger_sides, provider_sides
from genai_meter.reconcile.store import Loaded

_PLACES = Decimal("0.000001")


def percent(part: int | None, whole: int | None) -> Decimal | None:
    """part / whole in percent, 6 places half-even; None when either is unknown or whole is 0."""
    if part is None or not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(_PLACES, rounding=ROUND_HALF_EVEN)


def _usd(pico: int | None) -> str | None:
    return None if pico is None else usd_text(pico)


def _pct(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:f}"


@dataclass(slots=True)
class Row:
    key: RowKey
    provider: ProviderSide
    ledger: LedgerSide
    cause: str
    explanation: str

    @property
    def cost_ledger_pico(self) -> int | None:
        return self.ledger.cost_pico if self.ledger.cost_known else None

    @property
    def difference_pico(self) -> int | None:
        mine, theirs = self.provider.cost_pico, self.cost_ledger_pico
        return None if mine is None or theirs is None else mine - theirs

    def provider_tokens(self, name: str) -> int | None:
        """The provider's count of a class; None when it reports the class only inside input or output."""
        return None if name in self.provider.folded else self.provider.tokens[name]

    def as_json(self) -> dict[str, object]:
        p, led, k = self.provider, self.ledger, self.key
        body: dict[str, object] = {
            "day": k.day.isoformat(), "provider": k.provider, "model": k.model, "project": k.project,
            "api_key_id": k.api_key_id, "provider_models": sorted(p.models), "ledger_models": sorted(led.models),
            "requests_provider": p.requests, "requests_ledger": led.calls}
        for name in TOKEN_CLASSES:
            body[f"tokens_{name}_provider"] = self.provider_tokens(name)
            body[f"tokens_{name}_ledger"] = led.tokens[name]
        body.update({
            "folded": sorted(p.folded), "units_provider": dict(sorted(p.units.items())),
            "cost_provider_usd": _usd(p.cost_pico), "cost_provider_source": p.cost_source,
            "cost_ledger_usd": _usd(self.cost_ledger_pico), "ledger_calls_unpriced": led.calls_unpriced,
            "ledger_calls_upper_bound": led.calls_upper_bound, "difference_usd": _usd(self.difference_pico),
            "difference_pct": _pct(percent(self.difference_pico, p.cost_pico)), "cause": self.cause,
            "explanation": self.explanation})
        return body


@dataclass(slots=True)
class Sums:
    """Sums over rows (a day, a provider, all): money of the rows whose figure is known."""

    rows: int = 0
    requests_provider: int = 0
    requests_ledger: int = 0
    cost_provider_pico: int = 0
    cost_ledger_pico: int = 0
    difference_pico: int = 0
    unknown: int = 0  # rows whose difference is unknown (a side without a price)
    causes: Counter[str] = field(default_factory=Counter)

    def add(self, row: Row) -> None:
        self.rows += 1
        self.requests_provider += row.provider.requests or 0
        self.requests_ledger += row.ledger.calls
        self.cost_provider_pico += row.provider.cost_pico or 0
        self.cost_ledger_pico += row.cost_ledger_pico or 0
        if row.difference_pico is None:
            self.unknown += 1
        else:
            self.difference_pico += row.difference_pico
        self.causes[row.cause] += 1

    def as_json(self) -> dict[str, object]:
        return {"rows": self.rows, "requests_provider": self.requests_provider,
                "requests_ledger": self.requests_ledger, "cost_provider_usd": usd_text(self.cost_provider_pico),
                "cost_ledger_usd": usd_text(self.cost_ledger_pico), "difference_usd": usd_text(self.difference_pico),
                "difference_pct": _pct(percent(self.difference_pico, self.cost_provider_pico)),
                "rows_without_difference": self.unknown,
                "causes": {c: self.causes[c] for c in CAUSES if self.causes[c]}}


@dataclass(slots=True)
class Reconciliation:
    first: date
    last: date
    providers: tuple[str, ...]  # the providers asked for (all: every provider with a stored report)
    covered: tuple[tuple[str, date], ...]  # (provider, day) pairs some stored report covers
    rows: list[Row]

    def total(self, rows: Iterable[Row] | None = None) -> Sums:
        sums = Sums()
        for row in self.rows if rows is None else rows:
            sums.add(row)
        return sums

    def by_day(self) -> list[tuple[date, Sums]]:
        days = sorted({day for _, day in self.covered})
        return [(day, self.total(r for r in self.rows if r.key.day == day)) for day in days]

    def by_provider(self) -> dict[str, Sums]:
        found = sorted({provider for provider, _ in self.covered})
        return {provider: self.total(r for r in self.rows if r.key.provider == provider) for provider in found}

    def as_json(self) -> dict[str, object]:
        drift = [{"day": day.isoformat(), **{k: v for k, v in sums.as_json().items()
                                             if k in ("rows", "cost_provider_usd", "cost_ledger_usd", "difference_usd",
                                                      "difference_pct")}} for day, sums in self.by_day()]
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), "providers": list(self.providers),
                "days_covered": [{"provider": p, "day": d.isoformat()} for p, d in self.covered],
                "rows": [row.as_json() for row in self.rows], "totals": self.total().as_json(), "drift": drift,
                "causes": [cause.as_dict() for cause in CAUSES.values()]}


def compare(loaded: Loaded, ledger: Mapping[RowKey, LedgerSide], book: PriceBook, config: ReconcileConfig,
            first: date, last: date, providers: Sequence[str] = ()) -> Reconciliation:
    """Rows of every covered (provider, day): the provider's lines there and the ledger's calls there."""
    covered = tuple(sorted({(r.provider, r.day) for r in loaded.reports}))
    mine = provider_sides(loaded.reports, loaded.lines, book, config.match_dimensions)
    pairs = set(covered)
    keys = sorted({k for k in [*mine, *ledger] if (k.provider, k.day) in pairs})
    tolerance = to_pico(config.tolerance_usd)
    rows = []
    for key in keys:
        p = mine.get(key) or ProviderSide(cost_pico=0)
        led = ledger.get(key) or LedgerSide()
        if not p.present and led.calls == 0:
            continue  # a $0 line without usage, and no call: nothing to compare
        row = Row(key, p, led, "", "")
        row.cause, row.explanation = decide(p, led, row.difference_pico, tolerance)
        rows.append(row)
    return Reconciliation(first, last, tuple(providers), covered, rows)


def reconcile(loaded: Loaded, reader: LedgerReader, book: PriceBook, config: ReconcileConfig, first: date,
              last: date, providers: Sequence[str] = (), filters: Mapping[str, Sequence[str]] | None = None
              ) -> Reconciliation:
    """`compare` of the stored reports `loaded` with the ledger's calls of the same days and providers
    (under `filters`: a token's scope)."""
    asked = sorted({r.provider for r in loaded.reports})
    ledger = ledger_sides(reader, first, last, asked, filters or {}, config.match_dimensions)
    return compare(loaded, ledger, book, config, first, last, providers)
