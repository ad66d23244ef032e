"""The ledger rows of the calls a `Tally` counted in bulk: per group the labels, dimensions and price
(`RowBuilder.row` of its first call), per call its numbers: the same rows `RowBuilder` makes of the
calls `Meter.assess` would give (tests/receiver/test_tally_ingest.py compares them)."""

from __future__ import annotations

from genai_meter.collector_processor.metering.tally import Tally
from genai_meter.ledger import Entry
from genai_meter.ledger.rows import Row, RowBuilder


def tally_rows(tally: Tally, builder: RowBuilder) -> list[Row]:
    """Rows of `tally.taken`, in order."""
    firsts: dict[int, Row] = {}
    rows: list[Row] = []
    append = rows.append
    for taken in tally.taken:
        first = firsts.get(taken.group)
        if first is None:
            first = firsts[taken.group] = builder.row(Entry(*tally.call_of(taken)))
            append(first)
            continue
        ttft = taken.ttft_s
        append(Row(taken.end_ns, taken.trace_id, taken.span_id, taken.parent_span_id, first.labels, first.dims,
                   first.conversation, first.user, max(0, round(taken.duration_s * 1_000_000)),
                   None if ttft is None else max(0, round(ttft * 1_000_000)), taken.tokens, taken.costs,
                   sum(taken.costs), first.price, first.unpriced, first.unmetered, first.invalid,
                   first.weight_micro, first.cache_write_1h))
    return rows
