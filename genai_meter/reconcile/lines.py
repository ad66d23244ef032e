"""The normalized record of a provider's own figures: `ProviderLine`, and `Export`, what one file or pull holds.

A line is what the provider reports for one UTC day and one group of its report (model, project or
workspace, API key, service tier, batch), in genai-meter's terms: the five disjoint token classes of
docs/accuracy.md, billed units as `LLMCall.units` keys, and money as integers of 10^-12 of its currency.
docs/reconciliation.md says what each provider field becomes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from genai_meter.money import from_pico
from genai_meter.records import TokenCounts

TOKEN_CLASSES = ("input", "cache_read", "cache_write", "output", "reasoning")


class ReconcileError(ValueError):
    """A provider export or report that cannot be used; the message names the file (or URL) and the field."""


@dataclass(frozen=True, slots=True)
class Source:
    """Where a line comes from: a file path (or the endpoint URL of a pull) and the kind of report."""

    file: str
    kind: str  # openai.usage.completions, openai.costs, anthropic.usage.messages, anthropic.cost,
    # openrouter.activity, openrouter.csv, csv:<mapping name>, ... (KINDS)


@dataclass(frozen=True, slots=True)
class ProviderLine:
    """One provider-reported figure for a UTC day and one group of the report.

    Empty strings and None mean "the report is not split by this": a line with `model == ""` spans
    every model of its day, `batch is None` spans batch and non-batch calls, `requests is None` means
    the report counts no requests (Anthropic's usage report). Token fields are disjoint (input is
    uncached input; cache_write includes `cache_write_1h`); `folded` names the classes the source
    cannot tell apart, whose tokens are then counted in `input` (cache_read, cache_write) or in
    `output` (reasoning): compare input or output totals for those. `cost_pico` is None when the
    line states no cost, else the amount in 10^-12 of `currency` (an ISO 4217 code, "USD" for every
    provider today; `non_usd` flags any other).
    """

    day: date  # UTC
    provider: str  # genai-meter's provider id: openai, anthropic, openrouter, ...
    model: str  # as the provider names it
    model_key: str  # normalized: dated and undated names of one model share it (reconcile.models.model_key)
    source: Source
    project: str = ""  # OpenAI project_id, Anthropic workspace_id
    api_key_id: str = ""
    service_tier: str = ""  # default, flex, priority, scale, ... ("" = not split)
    batch: bool | None = None
    served_by: str = ""  # the upstream that served the calls (OpenRouter's provider_name)
    line_item: str = ""  # the provider's own label of a cost or usage line (OpenAI line_item, image size, ...)
    requests: int | None = None
    input: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cache_write_1h: int = 0  # the part of cache_write written for one hour (the rest: 5 minutes)
    output: int = 0
    reasoning: int = 0
    folded: tuple[str, ...] = ()  # token classes counted inside input or output by this source
    units: tuple[tuple[str, int], ...] = ()  # (LLMCall.units key, count), sorted by key, counts > 0
    cost_pico: int | None = None
    currency: str = ""  # "" when no cost is stated

    @property
    def tokens(self) -> TokenCounts:
        """The five classes as a `TokenCounts`."""
        return TokenCounts(self.input, self.cache_read, self.cache_write, self.output, self.reasoning)

    @property
    def units_dict(self) -> dict[str, int]:
        return dict(self.units)

    @property
    def non_usd(self) -> bool:
        """The cost is stated in a currency other than USD (not comparable without a rate)."""
        return self.cost_pico is not None and self.currency != "USD"

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready form: money as an exact decimal string (`cost`) and as `cost_pico`."""
        return {
            "day": self.day.isoformat(), "provider": self.provider, "model": self.model, "model_key": self.model_key,
            "project": self.project, "api_key_id": self.api_key_id, "service_tier": self.service_tier,
            "batch": self.batch, "served_by": self.served_by, "line_item": self.line_item, "requests": self.requests,
            "tokens": self.tokens.as_dict(), "cache_write_1h": self.cache_write_1h, "folded": list(self.folded),
            "units": self.units_dict, "cost": None if self.cost_pico is None else f"{from_pico(self.cost_pico):f}",
            "cost_pico": self.cost_pico, "currency": self.currency, "non_usd": self.non_usd,
            "source": {"file": self.source.file, "kind": self.source.kind},
        }

    @property
    def measures(self) -> tuple[str, ...]:
        """What the line states: "usage" (tokens, units or requests) and/or "cost"."""
        usage = self.requests is not None or bool(self.units) or any(getattr(self, c) for c in TOKEN_CLASSES)
        return (("usage",) if usage else ()) + (("cost",) if self.cost_pico is not None else ())


@dataclass(frozen=True, slots=True)
class Coverage:
    """One provider's report of one kind for one whole UTC day: importing it again replaces these lines."""

    provider: str
    day: date
    kind: str


@dataclass(frozen=True, slots=True)
class Export:
    """What one file (or one pull) holds: its lines, and the (provider, day, kind) reports it covers.

    A covered day with no lines is a day the provider reports as empty. Replacing an import deletes
    the lines of every covered (provider, day, kind) before adding the new ones, so an overlapping
    file read twice never counts twice.
    """

    lines: tuple[ProviderLine, ...]
    covers: frozenset[Coverage] = field(default_factory=frozenset)

    def pairs(self) -> frozenset[tuple[str, date]]:
        """The (provider, day) pairs covered, whatever the kind."""
        return frozenset((c.provider, c.day) for c in self.covers)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted({c.kind for c in self.covers} | {line.source.kind for line in self.lines}))


def merge_exports(exports: Iterable[Export]) -> Export:
    """One export of several (a pull's endpoints); lines in order, coverage united."""
    lines: list[ProviderLine] = []
    covers: set[Coverage] = set()
    for export in exports:
        lines.extend(export.lines)
        covers |= export.covers
    return Export(tuple(lines), frozenset(covers))


def check_currencies(lines: Iterable[ProviderLine], where: str) -> None:
    """ReconcileError naming `where` when the lines state costs in more than one currency."""
    seen = sorted({line.currency for line in lines if line.cost_pico is not None})
    if len(seen) > 1:
        raise ReconcileError(f"{where}: mixed currencies {', '.join(seen)}: one export states one currency")


def units_of(counts: dict[str, int]) -> tuple[tuple[str, int], ...]:
    """`units` from a mapping: sorted, zero counts dropped."""
    return tuple(sorted((key, count) for key, count in counts.items() if count))
