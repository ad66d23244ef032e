"""The shared query suite: the same answers from SQLite and from the ClickHouse SQL (chdb), equal to
plain-Python sums over the stored rows to the last digit, rollups or not."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genai_meter.config import Config
from genai_meter.ledger.model import LedgerReader
from genai_meter.ledger.parts import step_starts
from genai_meter.money import PICO_PER_USD
from tests.ledger import oracle
from tests.ledger.conftest import DATASET, Filled
from tests.ledger.support import DAY_NS, HOUR_NS, T0, entry

ROWS = oracle.stored_rows(DATASET, Config())
END = T0 + 41 * DAY_NS
# range ends: aligned to days and hours, and not aligned at all
POINTS = st.one_of(
    st.integers(0, 41).map(lambda d: T0 + d * DAY_NS),
    st.integers(0, 41 * 24).map(lambda h: T0 + h * HOUR_NS),
    st.integers(T0 - DAY_NS, END + DAY_NS),
)
FILTERS = st.fixed_dictionaries({}, optional={
    "model": st.lists(st.sampled_from(["gpt-4o", "gpt-4o-mini", "claude", "nope"]), min_size=1, max_size=2),
    "customer": st.lists(st.sampled_from(["", "acme", "zeta"]), min_size=1, max_size=2),
    "status": st.just(["error"]),
    "conversation": st.lists(st.sampled_from(["c1", "c2", "c3"]), min_size=1, max_size=2),
})
GROUPS = st.lists(st.sampled_from(["model", "customer", "feature", "status", "conversation", "user", "service"]),
                  max_size=2, unique=True)
SUITE = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SUITE
@given(a=POINTS, b=POINTS, filters=FILTERS, group_by=GROUPS)
def test_totals_equal_raw_sums(dataset_reader: LedgerReader, a: int, b: int, filters: dict[str, list[str]],
                               group_by: list[str]) -> None:
    start, end = min(a, b), max(a, b)
    assert dataset_reader.totals(start, end, filters, group_by) == oracle.totals(ROWS, start, end, filters, group_by)


@SUITE
@given(a=POINTS, b=POINTS, step=st.sampled_from(["1h", "1d", "1w", "1mo"]),
       offset=st.sampled_from([0, 3600, -7200, 19800]), filters=FILTERS,
       group_by=st.lists(st.sampled_from(["model", "customer", "user"]), max_size=1))
def test_series_points_equal_raw_sums(dataset_reader: LedgerReader, a: int, b: int, step: str, offset: int,
                                      filters: dict[str, list[str]], group_by: list[str]) -> None:
    start, end = min(a, b), max(a, b)
    if step == "1h" and end - start > 4000 * HOUR_NS:
        end = start + 4000 * HOUR_NS
    series = dataset_reader.series(start, end, step, filters, group_by, utc_offset_s=offset)  # type: ignore[arg-type]
    starts = step_starts(start, end, step, offset)  # type: ignore[arg-type]
    expected: dict[tuple[str, ...], list[tuple[int, object]]] = {}
    for i, s in enumerate(starts):
        lo, hi = max(s, start), min(starts[i + 1] if i + 1 < len(starts) else end, end)
        for t in oracle.totals(ROWS, lo, hi, filters, group_by):
            if t.calls:
                expected.setdefault(t.key, []).append((s, t))
    assert {k: [(p.start_ns, p.totals) for p in v] for k, v in series.items()} == expected


def test_series_minutes_and_point_cap(dataset_reader: LedgerReader) -> None:
    start = T0 + 3 * DAY_NS + 17
    series = dataset_reader.series(start, start + 6 * HOUR_NS, "1m", {})
    total = sum(p.totals.calls for points in series.values() for p in points)
    assert total == oracle.totals(ROWS, start, start + 6 * HOUR_NS, {})[0].calls > 0
    with pytest.raises(ValueError, match="points"):
        dataset_reader.series(T0, T0 + 10 * DAY_NS, "1m", {})


def test_top_by_cost_tokens_calls(dataset_reader: LedgerReader) -> None:
    for metric in ("cost", "tokens", "calls"):
        top = dataset_reader.top(T0 + 5, END, "model", metric, 2, {})
        ref = oracle.totals(ROWS, T0 + 5, END, {}, ["model"])
        score = {"cost": lambda t: t.cost_total_pico, "tokens": lambda t: t.tokens_total, "calls": lambda t: t.calls}
        ref.sort(key=lambda t: (-score[metric](t), t.key))
        assert top == ref[:2]


def test_events_page_through_everything_newest_first(dataset_reader: LedgerReader) -> None:
    seen: list[tuple[int, str, str]] = []
    cursor = ""
    while True:
        page = dataset_reader.events({"customer": ["acme"]}, start_ns=T0, end_ns=END, cursor=cursor, limit=333)
        seen += [(r.end_ns, r.trace_id, r.span_id) for r in page.rows]
        cursor = page.next_cursor
        if not cursor:
            break
    ref = sorted(((r.end_ns, r.trace_id.hex(), r.span_id.hex()) for r in ROWS
                  if dict(r.dims).get("customer") == "acme"), reverse=True)
    assert seen == ref


def test_event_row_carries_the_cost_arithmetic(dataset_reader: LedgerReader) -> None:
    row = dataset_reader.events({"model": ["claude"], "status": ["ok"]}, limit=1).rows[0]
    ref = next(r for r in ROWS if r.trace_id.hex() == row.trace_id)
    classes = ["input", "cache_read", "cache_write", "output", "reasoning", "request"]
    assert row.cost_pico == dict(zip(classes, ref.costs))
    assert row.unit_prices == {"input": "2.5", "output": "10"}
    assert row.price_entry == "openai/gpt-4o" and row.price_version == "0.0.1"
    assert row.tokens["input"] == ref.tokens[0] and row.duration_s == ref.duration_us / 1e6
    assert row.dimensions == dict(ref.dims)


def test_conversations_and_one_conversation(dataset_reader: LedgerReader) -> None:
    convs, cursor = dataset_reader.conversations(T0, END, {}, limit=2)
    more, last_cursor = dataset_reader.conversations(T0, END, {}, limit=2, cursor=cursor)
    got = {c.conversation: c for c in convs + more}
    assert set(got) == {"c1", "c2", "c3"} and last_cursor == ""
    assert [c.last_ns for c in convs + more] == sorted((c.last_ns for c in convs + more), reverse=True)
    for name, conv in got.items():
        mine = [r for r in ROWS if r.conversation == name]
        assert conv.calls == len(mine)
        assert conv.cost_pico == sum(sum(r.costs) for r in mine)
        assert conv.last_ns == max(r.end_ns for r in mine)
        assert conv.first_ns == min(r.end_ns - r.duration_us * 1000 for r in mine)
        assert conv.models == sorted({r.labels[3] for r in mine})
        calls = dataset_reader.conversation(name, {})
        assert [c.end_ns for c in calls] == sorted(r.end_ns for r in mine)


def test_latency_percentiles(dataset_reader: LedgerReader) -> None:
    got = dataset_reader.latency(T0, END, {"status": ["ok"]}, ["model"])
    for lat in got:
        values = sorted(r.duration_us for r in ROWS if r.labels[3] == lat.key[0] and r.labels[6] == "ok")
        assert lat.calls == len(values)
        assert lat.p95_s == values[math.ceil(0.95 * len(values)) - 1] / 1e6
        assert lat.p50_s == values[math.ceil(0.5 * len(values)) - 1] / 1e6


def test_dimension_values_and_fields(dataset_reader: LedgerReader) -> None:
    assert dataset_reader.dimension_values("customer", T0, END, {}) == ["acme", "zeta"]
    assert set(dataset_reader.fields()) >= {"model", "customer", "feature", "project", "conversation", "user"}
    with pytest.raises(ValueError, match="unknown field 'nope'"):
        dataset_reader.totals(T0, END, {"nope": ["x"]})
    with pytest.raises(ValueError, match="list of strings"):
        dataset_reader.totals(T0, END, {"model": "gpt-4o"})


def test_twenty_million_dollars_exact(fill: Filled) -> None:
    # 3 calls of $9,000,000.000000000001 input each in one hour: every sum is past 2^63 pico
    entries = [entry(i, T0 + HOUR_NS + i, "9000000.000000000001") for i in range(3)]
    reader = fill(entries)
    want = 3 * (9_000_000 * PICO_PER_USD + 1) + 3 * 1_500_000
    for start in (T0, T0 + HOUR_NS, T0 + 1):  # rollups, rollups, raw
        got = reader.totals(start, T0 + DAY_NS, {})[0]
        assert got.cost_total_pico == want
        assert got.cost_pico["input"] == 27_000_000 * PICO_PER_USD + 3
    assert Decimal(want).scaleb(-12) == Decimal("27000000.000004500003")
