"""The ledger rows of the calls a `Tally` counted in bulk: per group the labels, dimensions and price
(`RowBuilder.row` of its first call), per call its numbers: the same rows `RowBuilder` makes of the
calls `Meter.assess` would give (tests/receiver/test_tally_ingest.py compares them).

`tally_rows` gives `Row`s (any ledger); `TallyParams` gives the SQLite ledger's insert parameters
directly, with each group's constant part (ids included) kept per (template entry, used classes).
`params_pure` is the reference of the per-call part; `_tally_params` (C, optional) does the same, or
answers None for a shape it does not model (then the reference runs)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, cast

from genai_meter.collector_processor.metering.tally import ACCELERATOR_ENV, G_ENTRY, G_USED, Taken, Tally
from genai_meter.ledger import Entry
from genai_meter.ledger.rows import Row, RowBuilder
from genai_meter.ledger.sqlite_params import NO_TTFT, Dictionaries, Params

try:
    from genai_meter.collector_processor.receiver._tally_params import params as _c_params
except ImportError:  # not built (no C compiler at install): the pure path only
    _c_params = None  # type: ignore[assignment]

ACCELERATED: bool = _c_params is not None and os.environ.get(ACCELERATOR_ENV, "").strip().lower() != "off"
HEADS_MAX = 100_000  # (template entry, used classes) kept; cleared when full
Head = tuple[Any, ...]  # (labelset id, conversation, user, price id, unmetered, invalid, cache_write_1h,
# weight_micro, unpriced): what every call of a group shares


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


class TallyParams:
    """The SQLite insert parameters (`sqlite_params.INSERT_CALL`) of taken calls, equal to
    `params_of(tally_rows(...))`. Thread-safe (each request its own Tally; the head cache is a dict)."""

    def __init__(self, builder: RowBuilder, dicts: Dictionaries) -> None:
        self._builder = builder
        self._dicts = dicts
        self._heads: dict[tuple[Any, int], Head] = {}  # by (entry, used)
        self._epoch = dicts.epoch  # the heads' ids are from this cache epoch

    def params(self, tally: Tally) -> list[Params]:
        """Parameters of `tally.taken`, in order."""
        if self._epoch != self._dicts.epoch:  # the dictionaries dropped their ids (a label set was deleted)
            self._heads = {}
            self._epoch = self._dicts.epoch
        heads = self._group_heads(tally)
        if ACCELERATED:
            made = _c_params(tally.taken, heads)
            if made is not None:  # None: a shape the C code does not model (never one a Tally makes)
                return made
        return params_pure(tally.taken, heads)

    def _group_heads(self, tally: Tally) -> list[Head]:
        """Each group's head (by group index); a new group's made from its first taken call, the ids of
        all new ones resolved together (at most one transaction)."""
        heads: list[Head | None] = [self._heads.get((g[G_ENTRY], g[G_USED])) for g in tally.groups]
        if None in heads:
            rows: dict[int, Row] = {}
            for t in tally.taken:
                if heads[t.group] is None and t.group not in rows:
                    rows[t.group] = self._builder.row(Entry(*tally.call_of(t)))
            sets, prices = self._dicts.resolve([(r.labels, r.dims) for r in rows.values()],
                                               [r.price for r in rows.values()])
            if len(self._heads) >= HEADS_MAX:
                self._heads.clear()
            for index, row in rows.items():
                ls, price = sets[(row.labels, row.dims)], prices[row.price]
                head = heads[index] = (ls, row.conversation, row.user, price, row.unmetered, row.invalid,
                                       row.cache_write_1h, row.weight_micro, row.unpriced)
                group = tally.groups[index]
                if self._dicts.epoch == self._epoch:  # else these ids may be gone: not kept
                    self._heads[(group[G_ENTRY], group[G_USED])] = head
        return cast(list[Head], heads)


def params_pure(taken: Sequence[Taken], heads: Sequence[Head]) -> list[Params]:
    """The insert parameters of each taken call with its group's head (`heads[t.group]`): the
    reference of `_tally_params.params`."""
    out: list[Params] = []
    append = out.append
    for t in taken:
        ls, conversation, user, price, unmetered, invalid, cache_1h, weight, unpriced = heads[t.group]
        ttft, costs = t.ttft_s, t.costs
        append((t.end_ns, bytearray(t.trace_id), bytearray(t.span_id), bytearray(t.parent_span_id), ls,
                conversation, user, NO_TTFT if ttft is None else max(0, round(ttft * 1_000_000)), price,
                unmetered, invalid, cache_1h, *t.tokens, *costs, sum(costs), max(0, round(t.duration_s * 1_000_000)),
                weight, unpriced))
    return out
