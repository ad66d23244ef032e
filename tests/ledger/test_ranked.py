"""Ranked groupings (`LedgerReader.ranked`, `each_group`, `series_ranked`) on every backend: the top k
by cost, tokens or calls (ties by key) and the exact remainder, equal to the ranking of plain-Python
sums over the stored rows, and adding up to the ungrouped total to the last digit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from genai_meter.ledger.model import LedgerReader, Ranked, Totals
from genai_meter.ledger.query import step_starts, to_totals
from genai_meter.ledger.ranking import rank_groups
from tests.ledger import oracle
from tests.ledger.support import DAY_NS, T0
from tests.ledger.test_queries import END, FILTERS, GROUPS, POINTS, ROWS, SUITE


def exact(t: Totals | None) -> tuple[object, ...] | None:
    """Every integer of a Totals (durations and weights to the microsecond)."""
    if t is None:
        return None
    return (t.key, t.calls, t.errors, t.unpriced, t.unmetered, t.invalid, t.tokens, t.cost_pico, t.list_cost_pico,
            round(t.duration_s_sum * 1e6), round(t.weighted_calls * 1e6))


def shape(r: Ranked) -> tuple[object, ...]:
    return [exact(t) for t in r.rows], exact(r.rest), r.groups


def expected(start: int, end: int, filters: dict[str, list[str]], group_by: list[str], limit: int | None,
             metric: str) -> Ranked:
    return rank_groups(oracle.group_sums(ROWS, start, end, filters, group_by), {}, limit, metric, to_totals)


@SUITE
@given(a=POINTS, b=POINTS, filters=FILTERS, group_by=GROUPS, limit=st.sampled_from([None, 0, 1, 2, 5]),
       metric=st.sampled_from(["cost", "tokens", "calls"]))
def test_ranked_equals_the_ranking_of_raw_sums(dataset_reader: LedgerReader, a: int, b: int,
                                               filters: dict[str, list[str]], group_by: list[str], limit: int | None,
                                               metric: str) -> None:
    start, end = min(a, b), max(a, b)
    got = dataset_reader.ranked(start, end, filters, group_by, limit, metric)  # type: ignore[arg-type]
    assert shape(got) == shape(expected(start, end, filters, group_by, limit, metric))
    whole = oracle.totals(ROWS, start, end, filters)[0]
    parts = got.rows + ([got.rest] if got.rest else [])
    assert sum(t.calls for t in parts) == whole.calls
    assert sum(t.cost_total_pico for t in parts) == whole.cost_total_pico
    assert sum(t.tokens_total for t in parts) == whole.tokens_total


@SUITE
@given(a=POINTS, b=POINTS, filters=FILTERS, group_by=GROUPS)
def test_each_group_streams_every_group_ranked(dataset_reader: LedgerReader, a: int, b: int,
                                               filters: dict[str, list[str]], group_by: list[str]) -> None:
    start, end = min(a, b), max(a, b)
    got = list(dataset_reader.each_group(start, end, filters, group_by))
    assert [exact(t) for t in got] == [exact(t) for t in expected(start, end, filters, group_by, None, "cost").rows]


@SUITE
@given(a=POINTS, b=POINTS, step=st.sampled_from(["1h", "1d", "1w"]), offset=st.sampled_from([0, 3600, 19800]),
       group_by=st.lists(st.sampled_from(["model", "customer", "user"]), min_size=1, max_size=1),
       limit=st.sampled_from([None, 1, 3]))
def test_series_ranked_per_step(dataset_reader: LedgerReader, a: int, b: int, step: str, offset: int,
                                group_by: list[str], limit: int | None) -> None:
    start, end = min(a, b), max(a, b)
    end = min(end, start + 300 * 3600 * 10**9) if step == "1h" else end
    got = {s: shape(r) for s, r in dataset_reader.series_ranked(start, end, step, {}, group_by,  # type: ignore
                                                                 limit, offset)}
    starts = step_starts(start, end, step, offset)  # type: ignore[arg-type]
    want = {}
    for i, s in enumerate(starts):
        lo, hi = max(s, start), min(starts[i + 1] if i + 1 < len(starts) else end, end)
        ranked = expected(lo, hi, {}, group_by, limit, "cost")
        if ranked.groups:
            want[s] = shape(ranked)
    assert got == want


def test_a_remainder_row_sums_the_groups_past_the_limit(dataset_reader: LedgerReader) -> None:
    start, end = T0 + 5, END - DAY_NS // 3
    every = dataset_reader.ranked(start, end, {}, ["customer", "model"], None)
    top = dataset_reader.ranked(start, end, {}, ["customer", "model"], 2)
    assert top.groups == every.groups > 3 and top.rest is not None and top.limit == 2
    assert [exact(t) for t in top.rows] == [exact(t) for t in every.rows[:2]]
    assert top.rest.calls == sum(t.calls for t in every.rows[2:])
    assert top.rest.cost_pico == {c: sum(t.cost_pico[c] for t in every.rows[2:]) for c in top.rest.cost_pico}
