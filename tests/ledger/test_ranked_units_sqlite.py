"""SQLite ranks ranges that hold billed units in SQL (`sqlite_ranked`, `ranks_units`): `ranked`, `each_group`
and `series_ranked` equal the plain-Python ranking of the stored rows (`rank_groups`) to the last digit, units
included (in the cost rank, in each group's `UnitSums`, in the remainder), over raw calls, sealed hours, whole
days (per-field rollups beside the unit rollups per label set) and late calls held for a fold, whose units
come from `call_units`. The Python path (`Reader._groups`) is never taken."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genai_meter.config import Config
from genai_meter.ledger import open_reader, sqlite_ranked, sqlite_writer
from genai_meter.ledger.model import Entry, LedgerReader
from genai_meter.ledger.query import Reader
from genai_meter.ledger.rows import Row
from genai_meter.ledger.sqlite_reader import SQLiteSource
from genai_meter.ledger.units import UnitSums
from tests.ledger import oracle
from tests.ledger.support import DAY_NS, HOUR_NS, T0, entry, seal_until
from tests.ledger.test_late_held import _held, _write
from tests.ledger.test_queries import SUITE
from tests.ledger.test_ranked import exact, expected, expected_series, shape

W = T0 + 8 * DAY_NS + 5 * HOUR_NS + 123_456  # rollups before (days sealed before T0 + 8 days), raw calls after
END = T0 + 12 * DAY_NS
CUSTOMERS = ["", "acme", "zeta", "tie1", "tie2", *(f"c{i}" for i in range(8))]
UNITS = ["input_audio_tokens", "output_image_tokens", "web_searches", "custom.pages"]


def _entries(seed: int, n: int, start: int, span: int, first: int) -> list[Entry]:
    """Calls of a dozen customers over [start, start + span), a third with billed units (some unpriced or
    estimated: flags) whose cost is of the order of the tokens' cost, so units decide ranks."""
    rnd = random.Random(seed)
    out = []
    for i in range(first, first + n):
        e = entry(i, start + rnd.randrange(span), f"0.00{rnd.randrange(10**10):010d}",
                  model=rnd.choice(["gpt-4o", "gpt-audio", "claude"]), customer=rnd.choice(CUSTOMERS[:1] + CUSTOMERS[5:]
                                                                                          + CUSTOMERS[1:3]),
                  conversation=rnd.choice(["", "c1", "c2"]), user=rnd.choice(["", "alice", "bob"]))
        call, cost = e.call, e.cost
        assert cost is not None
        call.service_tier = rnd.choice(["", "default", "flex"])
        call.batch = rnd.random() < 0.2
        if rnd.random() < 0.35:
            names = rnd.sample(UNITS, rnd.randrange(1, 3))
            call.units = {name: rnd.randrange(1, 5000) for name in names}
            cost.unit_pico = {name: rnd.randrange(10**11) for name in names if name != "custom.pages"}
            if "custom.pages" in names:
                cost.unpriced_units = ("custom.pages",)
        if rnd.random() < 0.05:
            call.estimate = "audio split assumed from totals"
        out.append(e)
    return out


def _tied(first: int) -> list[Entry]:
    """tie1 and tie2: the same calls and units (one in a sealed day, one after W): equal at every metric."""
    out = []
    for customer in ("tie2", "tie1"):
        for at in (T0 + 2 * DAY_NS + HOUR_NS, W + HOUR_NS):
            e = entry(first + len(out), at + len(out), "0.001", customer=customer)
            e.call.units = {"input_audio_tokens": 700}
            assert e.cost is not None
            e.cost.unit_pico = {"input_audio_tokens": 3 * 10**9}
            out.append(e)
    return out


@pytest.fixture(scope="module")
def units_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LedgerReader, list[Row]]]:
    """Sealed days and hours before W, raw calls after it, and late calls (before W) held for a fold."""
    path = tmp_path_factory.mktemp("ranked-units") / "ledger.db"
    with pytest.MonkeyPatch.context() as patch:  # the writer's own seal passes stop before T0: W is set here
        patch.setattr(sqlite_writer, "SEAL_GRACE_S", time.time() - (T0 - 30 * DAY_NS) / 10**9)
        first = _entries(3, 900, T0, 12 * DAY_NS, 0) + _tied(50_000)
        _write(path, first)
        seal_until(path, W)
        late = _entries(4, 200, T0, W - T0, 10_000)
        _write(path, late, fold=False)
    assert _held(path) == 200
    reader = open_reader(f"sqlite:///{path}", Config())
    assert isinstance(reader, Reader) and isinstance(reader.source, SQLiteSource)

    def python_path(*_: object) -> None:
        raise AssertionError("a range with billed units was ranked in Python")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reader, "_groups", python_path)
        yield reader, oracle.stored_rows(first + late, Config())
    reader.close()


POINTS = st.one_of(st.integers(0, 12).map(lambda d: T0 + d * DAY_NS), st.integers(0, 12 * 24).map(lambda h: T0 + h * HOUR_NS),
                   st.integers(T0 - DAY_NS, END + DAY_NS))
FILTERS = st.fixed_dictionaries({}, optional={
    "customer": st.lists(st.sampled_from(["", "acme", "tie1", "c3", "nobody"]), min_size=1, max_size=3),
    "service_tier": st.lists(st.sampled_from(["", "flex", "default"]), min_size=1, max_size=2),
    "batch": st.sampled_from([["true"], [""]]),
    "model": st.lists(st.sampled_from(["gpt-4o", "claude"]), min_size=1, max_size=1),
    "user": st.lists(st.sampled_from(["alice", "bob"]), min_size=1, max_size=1),
})
GROUPS = st.lists(st.sampled_from(["customer", "model", "service_tier", "batch", "conversation", "user"]),
                  max_size=2, unique=True)
LIMITS = st.sampled_from([None, 0, 1, 2, 3, 7, 50])
MANY = settings(SUITE, max_examples=80)  # a few ms an example


@MANY
@given(a=POINTS, b=POINTS, filters=FILTERS, group_by=GROUPS, limit=LIMITS,
       metric=st.sampled_from(["cost", "cost", "tokens", "calls"]))
def test_ranked_with_units_equals_the_python_ranking(units_ledger: tuple[LedgerReader, list[Row]], a: int, b: int,
                                                     filters: dict[str, list[str]], group_by: list[str],
                                                     limit: int | None, metric: str) -> None:
    reader, rows = units_ledger
    start, end = min(a, b), max(a, b)
    got = reader.ranked(start, end, filters, group_by, limit, metric)  # type: ignore[arg-type]
    assert shape(got) == shape(expected(start, end, filters, group_by, limit, metric, rows))
    streamed = [exact(t) for t in reader.each_group(start, end, filters, group_by, metric)]  # type: ignore[arg-type]
    assert streamed == [exact(t) for t in expected(start, end, filters, group_by, None, metric, rows).rows]


@MANY
@given(a=POINTS, b=POINTS, step=st.sampled_from(["1h", "1d", "1w"]), filters=FILTERS,
       group_by=st.lists(st.sampled_from(["customer", "service_tier", "user"]), min_size=1, max_size=1),
       limit=st.sampled_from([None, 0, 1, 3]))
def test_series_ranked_with_units_per_step(units_ledger: tuple[LedgerReader, list[Row]], a: int, b: int, step: str,
                                           filters: dict[str, list[str]], group_by: list[str],
                                           limit: int | None) -> None:
    reader, rows = units_ledger
    start, end = min(a, b), max(a, b)
    end = min(end, start + 100 * HOUR_NS) if step == "1h" else end
    got = {s: shape(r) for s, r in reader.series_ranked(start, end, step, filters, group_by, limit)}  # type: ignore
    assert got == expected_series(rows, start, end, step, filters, group_by, limit, 0)


def test_units_decide_ranks_ties_go_by_key_and_the_remainder_subtracts_units(
        units_ledger: tuple[LedgerReader, list[Row]]) -> None:
    reader, rows = units_ledger
    for start, end in ((T0, END), (T0 + 2 * DAY_NS, W + 2 * HOUR_NS), (T0 + 3 * HOUR_NS + 7, T0 + 7 * DAY_NS)):
        every = reader.ranked(start, end, {}, ["customer"], None)
        assert shape(every) == shape(expected(start, end, {}, ["customer"], None, "cost", rows))
        by_classes = sorted(every.rows, key=lambda t: (-sum(t.cost_pico.values()), t.key))
        assert [t.key for t in by_classes] != [t.key for t in every.rows]  # the units' cost changes the order
        for limit in (0, 1, 4, len(every.rows) - 1, len(every.rows), len(every.rows) + 5):
            top = reader.ranked(start, end, {}, ["customer"], limit)
            assert shape(top) == shape(expected(start, end, {}, ["customer"], limit, "cost", rows))
            assert [exact(t) for t in top.rows] == [exact(t) for t in every.rows[:limit]]
            assert (top.rest is None) == (limit >= len(every.rows))
            if top.rest is not None:
                want = UnitSums()
                for t in every.rows[limit:]:
                    want.merge(t.units)
                assert top.rest.units == want and top.rest.units.quantity
    keys = [t.key for t in reader.ranked(T0, END, {"customer": ["tie1", "tie2"]}, ["customer"], None).rows]
    assert keys == [("tie1",), ("tie2",)]  # the same cost, units included: by key


def test_each_group_streams_one_snapshot_while_calls_arrive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls with units committed while `each_group` reads (right after its units, and between its pages of 2
    groups) are in no row: the units and every page come from one snapshot."""
    monkeypatch.setattr(sqlite_writer, "SEAL_GRACE_S", time.time() - (T0 - 30 * DAY_NS) / 10**9)
    monkeypatch.setattr(sqlite_ranked, "PAGE", 2)
    path = tmp_path / "ledger.db"
    before = _entries(8, 120, T0, DAY_NS, 0)
    _write(path, before)
    reader = open_reader(f"sqlite:///{path}", Config())
    rows = oracle.stored_rows(before, Config())
    want = [exact(t) for t in expected(T0, T0 + DAY_NS, {}, ["customer"], None, "cost", rows).rows]
    read_units = sqlite_ranked.unit_amounts
    arriving = iter([_entries(9, 60, T0, DAY_NS, 1000), _entries(10, 60, T0, DAY_NS, 2000)])

    def units_then_a_commit(*args: Any) -> dict[tuple[str, ...], dict[str, list[int]]]:
        found = read_units(*args)
        _write(path, next(arriving))
        return found

    monkeypatch.setattr(sqlite_ranked, "unit_amounts", units_then_a_commit)
    stream = reader.each_group(T0, T0 + DAY_NS, {}, ["customer"])
    got = [exact(next(stream))]
    _write(path, next(arriving))
    got += [exact(t) for t in stream]
    assert got == want and len(got) > 4
    reader.close()
