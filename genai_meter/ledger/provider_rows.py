"""The stored form of the providers' own reports: `ReportRow` (a covered provider, UTC day and report
kind) and `LineRow` (one line of it), as both backends write and read them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import NamedTuple

MAX_PICO = 2**63 - 1  # a line's cost in 10^-12 of its currency must fit a signed 64-bit integer


class ReportRow(NamedTuple):
    """One report of one kind for one whole UTC day: stored, its lines replace the earlier ones."""

    provider: str
    day: date
    kind: str  # openai.usage.completions, openai.costs, anthropic.cost, csv:<mapping>, ...
    states_cost: bool  # the report states costs (a cost report, OpenRouter's activity, a mapping with a cost)
    lines: int  # how many lines it holds (0: the provider reports the day empty)
    source: str  # the file, or the endpoint of a pull


class LineRow(NamedTuple):
    """One line of a report (docs/reconciliation.md, "The normalized line")."""

    provider: str
    day: date
    kind: str
    seq: int  # its place in its report, from 0
    model: str
    model_key: str
    project: str
    api_key_id: str
    service_tier: str
    batch: bool | None
    served_by: str
    line_item: str
    requests: int | None
    tokens: tuple[int, int, int, int, int]  # input, cache_read, cache_write, output, reasoning
    cache_write_1h: int
    folded: tuple[str, ...]
    units: tuple[tuple[str, int], ...]  # (LLMCall.units key, count), sorted
    cost_pico: int | None  # 10^-12 of `currency`; None: the line states no cost
    currency: str
    source: str


class Batch(NamedTuple):
    """What one file or pull holds: the reports it covers and their lines."""

    reports: Sequence[ReportRow]
    lines: Sequence[LineRow]


def check_batches(batches: Sequence[Batch]) -> None:
    """ValueError naming the line when a line lies outside its batch's reports or its cost cannot be stored."""
    for batch in batches:
        covered = {(r.provider, r.day, r.kind) for r in batch.reports}
        for line in batch.lines:
            where = f"{line.source}: {line.provider} {line.day} {line.kind} line {line.seq}"
            if (line.provider, line.day, line.kind) not in covered:
                raise ValueError(f"{where}: not in a report the batch covers")
            if line.cost_pico is not None and abs(line.cost_pico) > MAX_PICO:
                raise ValueError(f"{where}: cost beyond what the ledger stores (9.2 million a line)")
