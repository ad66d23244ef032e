"""Ranked groupings (`LedgerReader.ranked`, `each_group`, `series_ranked`) on every backend: the top k
by cost, tokens or calls (ties by key) and the exact remainder, equal to the ranking of plain-Python
sums over the stored rows (`rank_groups`), billed units included, and adding up to the ungrouped total
to the last digit. The engine ranks, units included: SQLite (`sqlite_ranked`; more unit cases in
test_ranked_units_sqlite.py) and ClickHouse on chdb (`clickhouse_grouped`), over the sealed hours' rollups
and the raw calls after them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genai_meter.config import Config
from genai_meter.ledger.clickhouse_reader import ClickHouseSource
from genai_meter.ledger.model import Entry, LedgerReader, Ranked, Totals
from genai_meter.ledger.query import Reader, step_starts, to_totals
from genai_meter.ledger.ranking import rank_groups
from genai_meter.ledger.rows import Row
from tests.ledger import oracle
from tests.ledger.chdb_harness import ChdbExecutor, new_database
from tests.ledger.conftest import Filled
from tests.ledger.support import DAY_NS, HOUR_NS, T0, entry, make_call
from tests.ledger.test_queries import END, FILTERS, GROUPS, POINTS, ROWS, SUITE
from tests.ledger.test_units import unit_entries


def exact(t: Totals | None) -> tuple[object, ...] | None:
    """Every integer of a Totals (durations and weights to the microsecond)."""
    if t is None:
        return None
    return (t.key, t.calls, t.errors, t.unpriced, t.unmetered, t.invalid, t.tokens, t.cost_pico, t.list_cost_pico,
            round(t.duration_s_sum * 1e6), round(t.weighted_calls * 1e6), t.units)


def shape(r: Ranked) -> tuple[object, ...]:
    return [exact(t) for t in r.rows], exact(r.rest), r.groups


def expected(start: int, end: int, filters: dict[str, list[str]], group_by: list[str], limit: int | None,
             metric: str, rows: list[Row] = ROWS) -> Ranked:
    return rank_groups(oracle.group_sums(rows, start, end, filters, group_by),
                       oracle.group_units(rows, start, end, filters, group_by), limit, metric, to_totals)


def expected_series(rows: list[Row], start: int, end: int, step: str, filters: dict[str, list[str]],
                    group_by: list[str], limit: int | None, offset: int) -> dict[int, tuple[object, ...]]:
    """`series_ranked` of the rows: the ranking of each step's part of the range, steps with calls only."""
    starts = step_starts(start, end, step, offset)  # type: ignore[arg-type]
    want = {}
    for i, s in enumerate(starts):
        lo, hi = max(s, start), min(starts[i + 1] if i + 1 < len(starts) else end, end)
        ranked = expected(lo, hi, filters, group_by, limit, "cost", rows)
        if ranked.groups:
            want[s] = shape(ranked)
    return want


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
    assert got == expected_series(ROWS, start, end, step, {}, group_by, limit, offset)


def test_series_ranked_by_month_and_minute_at_offsets_west_and_east(dataset_reader: LedgerReader) -> None:
    minutes = (T0 + 3 * DAY_NS, T0 + 3 * DAY_NS + 3 * HOUR_NS)
    for step, start, end, offset in (("1mo", T0 - DAY_NS, END, -18000), ("1mo", T0 + 5, END, 0),
                                     ("1w", T0 + 7, END - 9, -34200), ("1m", *minutes, -3600),
                                     ("1d", T0 + 13, END, 45900)):
        for limit in (None, 2):
            got = {s: shape(r) for s, r in dataset_reader.series_ranked(start, end, step, {}, ["model"],  # type: ignore
                                                                         limit, offset)}
            assert got == expected_series(ROWS, start, end, step, {}, ["model"], limit, offset) and got


def test_a_remainder_row_sums_the_groups_past_the_limit(dataset_reader: LedgerReader) -> None:
    start, end = T0 + 5, END - DAY_NS // 3
    every = dataset_reader.ranked(start, end, {}, ["customer", "model"], None)
    top = dataset_reader.ranked(start, end, {}, ["customer", "model"], 2)
    assert top.groups == every.groups > 3 and top.rest is not None and top.limit == 2
    assert [exact(t) for t in top.rows] == [exact(t) for t in every.rows[:2]]
    assert top.rest.calls == sum(t.calls for t in every.rows[2:])
    assert top.rest.cost_pico == {c: sum(t.cost_pico[c] for t in every.rows[2:]) for c in top.rest.cost_pico}


AFTER_SEAL = T0 + 5 * DAY_NS  # past the chdb harness's sealed hours: raw calls; before it, rollups


def tied_entries() -> list[Entry]:
    """Customers a-d with the same calls (one in a sealed hour, one after), z with one dearer call, e with
    an unpriced call, u with an unmetered one, x with an invalid one."""
    out = []
    for customer in ("d", "b", "a", "c"):
        for at in (T0 + HOUR_NS, AFTER_SEAL):
            out.append(entry(len(out), at + len(out), "0.5", customer=customer))
    out.append(entry(len(out), T0 + 2 * HOUR_NS, "2", customer="z"))
    out.append(Entry(make_call(len(out), AFTER_SEAL + HOUR_NS, customer="e"), None))
    unmetered = entry(len(out), AFTER_SEAL + 2 * HOUR_NS, "0.25", customer="u", tokens=(0, 0, 0, 0, 0))
    unmetered.call.unmetered = "no_usage"
    out.append(unmetered)
    out.append(entry(len(out), T0 + 3 * HOUR_NS, customer="x", invalid="negative"))
    return out


def test_ties_rank_by_key_and_the_remainder_is_exact(fill: Filled) -> None:
    entries = tied_entries()
    reader = fill(entries)
    rows = oracle.stored_rows(entries, Config())
    start, end = T0, AFTER_SEAL + DAY_NS
    top = reader.ranked(start, end, {}, ["customer"], 2)
    assert [t.key for t in top.rows] == [("z",), ("a",)] and top.groups == 8
    assert top.rest is not None and top.rest.key == () and top.rest.calls == 6 + 1 + 1 + 1
    assert (top.rest.unpriced, top.rest.unmetered, top.rest.invalid) == (1, 1, 1)
    for metric in ("cost", "tokens", "calls"):
        for limit in (None, 0, 1, 2, 5, 8, 50):  # k past the number of groups: no remainder
            got = reader.ranked(start, end, {}, ["customer"], limit, metric)  # type: ignore[arg-type]
            assert shape(got) == shape(expected(start, end, {}, ["customer"], limit, metric, rows))
            assert (got.rest is None) == (limit is None or limit >= 8)
        streamed = [exact(t) for t in reader.each_group(start, end, {}, ["customer"], metric)]  # type: ignore[arg-type]
        assert streamed == [exact(t) for t in expected(start, end, {}, ["customer"], None, metric, rows).rows]
    assert [t.key for t in reader.ranked(start, end, {}, ["customer"], 8, "tokens").rows][:4] == \
        [("a",), ("b",), ("c",), ("d",)]  # equal tokens: by key
    got = {s: shape(r) for s, r in reader.series_ranked(start, end, "1d", {}, ["customer"], 1)}
    assert got == expected_series(rows, start, end, "1d", {}, ["customer"], 1, 0) and len(got) == 2
    if isinstance(reader, Reader) and isinstance(reader.source, ClickHouseSource):  # ranked by the engine
        executor = reader.source.executor
        assert isinstance(executor, ChdbExecutor)
        assert sum("row_number() OVER (PARTITION BY st" in s for s in executor.statements) == 1


def test_empty_ranges_have_no_groups(fill: Filled) -> None:
    reader = fill(tied_entries())
    later = AFTER_SEAL + 5 * DAY_NS
    for start, end in ((T0 - DAY_NS, T0), (T0 + HOUR_NS, T0 + HOUR_NS), (later, later + 4 * DAY_NS)):
        for limit in (None, 0, 3):
            assert shape(reader.ranked(start, end, {}, ["customer"], limit)) == ([], None, 0)
            assert shape(reader.ranked(start, end, {}, [], limit)) == ([], None, 0)
        assert list(reader.each_group(start, end, {}, ["customer"])) == []
        assert list(reader.series_ranked(start, end, "1h", {}, ["customer"], 2)) == []
        assert reader.totals(start, end, {}, ["customer"]) == []
        [zero] = reader.totals(start, end, {})
        assert (zero.calls, zero.cost_total_pico) == (0, 0)
    assert shape(reader.ranked(T0, AFTER_SEAL + DAY_NS, {"customer": ["nobody"]}, ["model"], 2)) == ([], None, 0)


def unit_ledger_entries() -> list[Entry]:
    """Calls with billed units, tiers, batch and flags over both sides of the seal, and two customers whose
    order the units' cost decides: "audio" (cheap tokens, $1 of audio) before "text" ($0.5 of tokens)."""
    entries = unit_entries(23, 500, T0, 6 * DAY_NS, first=1000)
    audio = entry(1, T0 + 3 * HOUR_NS, "0.000001", customer="audio")
    audio.call.units = {"input_audio_tokens": 4000}
    assert audio.cost is not None
    audio.cost.unit_pico = {"input_audio_tokens": 10**12}
    return [*entries, audio, entry(2, AFTER_SEAL + HOUR_NS, "0.5", customer="text")]


def test_billed_units_count_in_the_cost_rank(fill: Filled) -> None:
    entries = unit_ledger_entries()
    reader = fill(entries)
    rows = oracle.stored_rows(entries, Config())
    pair = {"customer": ["audio", "text"]}
    [first] = reader.ranked(T0, AFTER_SEAL + DAY_NS, pair, ["customer"], 1).rows
    assert first.key == ("audio",) and first.units.cost_pico == {"input_audio_tokens": 10**12}
    ranges = [(T0, T0 + 6 * DAY_NS), (T0, T0 + 4 * DAY_NS), (T0 + 7 * HOUR_NS + 5, AFTER_SEAL + 9 * HOUR_NS)]
    for start, end in ranges:
        for filters in ({}, {"service_tier": ["flex", ""]}, {"batch": ["true"]}):
            for group_by in ([], ["customer"], ["service_tier"], ["batch", "model"]):
                for limit in (None, 0, 1, 2):
                    got = reader.ranked(start, end, filters, group_by, limit)
                    assert shape(got) == shape(expected(start, end, filters, group_by, limit, "cost", rows))
                everyone = [exact(t) for t in reader.each_group(start, end, filters, group_by)]
                assert everyone == [exact(t) for t in expected(start, end, filters, group_by, None, "cost", rows).rows]
        got_series = {s: shape(r) for s, r in reader.series_ranked(start, end, "1d", {}, ["service_tier"], 2)}
        assert got_series == expected_series(rows, start, end, "1d", {}, ["service_tier"], 2, 0)
        [total] = reader.totals(start, end, {})
        parts = reader.ranked(start, end, {}, ["customer"], 1)
        assert sum(t.cost_total_pico for t in [*parts.rows, *([parts.rest] if parts.rest else [])]) == \
            total.cost_total_pico


@pytest.mark.slow
def test_clickhouse_streams_every_group_from_the_engine() -> None:
    """100,000 groups (one per user) over the chunk size of the engine's answers: `each_group` yields the
    first group with one chunk read, ranks in the engine (no per-group `aggregate` read), and equals the
    ranking of the same sums in Python to the last digit."""
    executor, db = new_database(Config())
    executor.command(
        f"INSERT INTO {db}.calls (tenant, end_ns, trace_id, span_id, model, status, user, t_input, c_input, "
        "c_output, duration_us, weight_micro) SELECT '', {t0:Int64} + number * 1000, hex(number), '01', 'm', 'ok', "
        "concat('u', toString(number % 100000)), number % 7, toDecimal128(number % 1013, 12) / 1000000, "
        "toDecimal128(number % 3, 12) / 1000, 1, 1000000 FROM numbers(130000)", {"t0": T0})
    reader = Reader(ClickHouseSource(executor, db, Config()))
    assert isinstance(executor, ChdbExecutor)
    executor.statements.clear()
    stream = reader.each_group(T0, T0 + HOUR_NS, {}, ["user"])
    first = next(stream)
    assert executor.streamed == 1 and sum("row_number" in s or "ORDER BY v DESC" in s for s in executor.statements) == 1
    got = [first, *stream]
    assert executor.streamed >= 2 and len(got) == 100_000
    assert not any(s.startswith("SELECT 0 AS t") for s in executor.statements)  # no grouping read into Python
    groups, units = reader._groups(T0, T0 + HOUR_NS, {}, ["user"])
    assert [exact(t) for t in got] == [exact(t) for t in rank_groups(groups, units, None, "cost", to_totals).rows]
    top = reader.ranked(T0, T0 + HOUR_NS, {}, ["user"], 3)
    assert [exact(t) for t in top.rows] == [exact(t) for t in got[:3]] and top.groups == 100_000
    assert top.rest is not None and top.rest.calls == 130_000 - sum(t.calls for t in got[:3])
    reader.close()
