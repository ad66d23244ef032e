"""Provider reports in the ledger: `store` an import or pull (replacing what it covers), `load` days back.

An `Export` becomes one ledger batch (`ledger.provider_lines`): a report row per covered (provider,
day, kind), saying whether that report states costs, and its lines. `store` writes the batches of
one command at once, all or nothing; importing a file again, or one that overlaps it, replaces those
(provider, day, kind) lines and never adds them twice.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from genai_meter.config import Config
from genai_meter.config_reconcile import CsvMappingConfig
from genai_meter.ledger.provider_lines import open_provider_lines
from genai_meter.ledger.provider_rows import MAX_PICO, Batch, LineRow, ReportRow
from genai_meter.reconcile import anthropic, openai, openrouter
from genai_meter.reconcile.lines import Export, ProviderLine, ReconcileError, Source, units_of

# Report kinds whose lines state what the provider billed (the rest report usage only).
COST_KINDS = frozenset({openai.KINDS["organization.costs.result"], anthropic.COST, openrouter.ACTIVITY,
                        openrouter.CSV_KIND})


def states_cost(kind: str, mappings: Mapping[str, CsvMappingConfig]) -> bool:
    """Whether a report of `kind` states costs: a provider's cost report, OpenRouter's activity (usage with
    its cost), or a CSV whose mapping maps a cost column."""
    if kind in COST_KINDS:
        return True
    if kind.startswith("csv:"):
        mapping = mappings.get(kind.removeprefix("csv:"))
        return mapping is not None and "cost" in mapping.columns
    return False


def _row(line: ProviderLine, seq: int) -> LineRow:
    if line.cost_pico is not None and abs(line.cost_pico) > MAX_PICO:
        raise ReconcileError(f"{line.source.file}: {line.day} {line.model or 'no model'}: cost "
                             f"{line.cost_pico} x 10^-12 {line.currency} is beyond what the ledger stores")
    return LineRow(line.provider, line.day, line.source.kind, seq, line.model, line.model_key, line.project,
                   line.api_key_id, line.service_tier, line.batch, line.served_by, line.line_item, line.requests,
                   (line.input, line.cache_read, line.cache_write, line.output, line.reasoning), line.cache_write_1h,
                   line.folded, line.units, line.cost_pico, line.currency, line.source.file)


def to_batch(export: Export, mappings: Mapping[str, CsvMappingConfig]) -> Batch:
    """The ledger batch of `export`; ReconcileError naming the file for a line it cannot store."""
    seqs: Counter[tuple[str, date, str]] = Counter()
    rows: list[LineRow] = []
    for line in export.lines:
        key = (line.provider, line.day, line.source.kind)
        rows.append(_row(line, seqs[key]))
        seqs[key] += 1
    sources = {(line.provider, line.day, line.source.kind): line.source.file for line in export.lines}
    default = next((line.source.file for line in export.lines), "")
    reports = [ReportRow(c.provider, c.day, c.kind, states_cost(c.kind, mappings), seqs[(c.provider, c.day, c.kind)],
                         sources.get((c.provider, c.day, c.kind), default))
               for c in sorted(export.covers, key=lambda c: (c.provider, c.day, c.kind))]
    outside = sorted(set(seqs) - {(r.provider, r.day, r.kind) for r in reports})
    if outside:
        provider, day, kind = outside[0]
        raise ReconcileError(f"{sources[outside[0]]}: {kind} lines of {provider} on {day} lie outside the whole days "
                             "the file covers")
    return Batch(reports, rows)


def line_of(row: LineRow) -> ProviderLine:
    """The `ProviderLine` a stored line was made from."""
    return ProviderLine(
        day=row.day, provider=row.provider, model=row.model, model_key=row.model_key,
        source=Source(row.source, row.kind),
        project=row.project, api_key_id=row.api_key_id, service_tier=row.service_tier, batch=row.batch,
        served_by=row.served_by, line_item=row.line_item, requests=row.requests, input=row.tokens[0],
        cache_read=row.tokens[1], cache_write=row.tokens[2], output=row.tokens[3], reasoning=row.tokens[4],
        cache_write_1h=row.cache_write_1h, folded=row.folded, units=units_of(dict(row.units)),
        cost_pico=row.cost_pico, currency=row.currency)


@dataclass(frozen=True, slots=True)
class Stored:
    """What one `store` call wrote."""

    reports: int
    lines: int
    days: tuple[date, ...]
    providers: tuple[str, ...]


def store(url: str, config: Config, exports: Sequence[Export], *, migrate: bool = False,
          now_ns: int | None = None) -> Stored:
    """Store `exports` in the ledger at `url`, in order, replacing the (provider, day, kind) reports they
    cover; all or nothing. ReconcileError for a line the ledger cannot hold (nothing stored);
    LedgerOpenError / LedgerUnavailable when the ledger cannot be opened or written."""
    batches = [to_batch(export, config.reconcile.mappings) for export in exports]
    store_ = open_provider_lines(url, config, write=True, migrate=migrate)
    try:
        store_.replace(batches, time.time_ns() if now_ns is None else now_ns)
    finally:
        store_.close()
    reports = [r for b in batches for r in b.reports]
    return Stored(len(reports), sum(len(b.lines) for b in batches), tuple(sorted({r.day for r in reports})),
                  tuple(sorted({r.provider for r in reports})))


@dataclass(frozen=True, slots=True)
class Loaded:
    """The stored reports of some days: each covered (provider, day, kind) and the lines of all of them."""

    reports: tuple[ReportRow, ...]
    lines: tuple[ProviderLine, ...]


def load(url: str, config: Config, first: date, last: date, providers: Sequence[str] = ()) -> Loaded:
    """The provider reports stored for days first..last (inclusive), of `providers` when given."""
    store_ = open_provider_lines(url, config)
    try:
        reports, rows = store_.read(first, last, providers)
    finally:
        store_.close()
    return Loaded(tuple(reports), tuple(line_of(row) for row in rows))
