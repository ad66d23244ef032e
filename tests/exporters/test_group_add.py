"""The C `add_group` (`_group_add.c`) makes exactly the additions of the reference `add_group_pure`:
random slots, groups and value tables (huge ints, Decimal costs, floats with negative zero, NaN and
infinities, empty value lists, priced or not, optional error/unmetered/counted series) leave identical
tables; a broken input raises the pure function's exception type and leaves every list untouched. A real
store counts a group with `record_group` (through either function) as `record_call` counts its calls one
by one. The extension is built in this checkout (CI exercises it), switched off by
GENAI_METER_ACCELERATOR=off, and leaks nothing.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from bisect import bisect_left
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genai_meter import contract
from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics, group_add, recording
from genai_meter.exporters.group_add import add_group_pure
from genai_meter.records import Cost, LLMCall, TokenCounts
from tests.support.otlp import REPO

FUZZ = settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def c_add_group() -> Any:
    from genai_meter.exporters import _group_add

    return _group_add.add_group


def test_the_accelerator_is_built_and_on() -> None:
    """Fails (not skips) when the extension is missing: `pip install -e .` builds it in place."""
    from genai_meter.exporters import _group_add

    assert os.environ.get(group_add.ACCELERATOR_ENV, "") != "off", "the test run must not switch it off"
    assert group_add.ACCELERATED
    assert group_add.add_group is _group_add.add_group
    assert vars(recording)["add_group"] is _group_add.add_group


def test_switched_off_by_the_environment() -> None:
    code = ("from genai_meter.exporters import group_add\n"
            "assert not group_add.ACCELERATED\n"
            "assert group_add.add_group is group_add.add_group_pure\n"
            "print('off')\n")
    env = {**os.environ, "GENAI_METER_ACCELERATOR": "off"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert (out.returncode, out.stdout.strip()) == (0, "off"), out.stderr


# -- comparing the two functions on random groups -----------------------------------------------


def canon(value: Any) -> Any:
    """`value` with every number tagged by its exact type and value (floats bit for bit, Decimals with
    their exponent), so two tables compare equal only when identical."""
    if isinstance(value, list | tuple):
        return (type(value).__name__, [canon(v) for v in value])
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, Decimal):
        return ("Decimal", str(value), value.as_tuple())
    return (type(value).__name__, value)


INTS = st.one_of(st.integers(-3, 300), st.integers(-(2 ** 80), 2 ** 80), st.sampled_from([2 ** 63, 2 ** 64 - 1, 0]))
FLOATS = st.one_of(st.floats(), st.sampled_from([-0.0, 0.0, 1e308, -1e308, 5e-324]), st.floats(0, 100))
DECIMALS = st.one_of(st.decimals(allow_nan=False, allow_infinity=False),
                     st.decimals(-(10 ** 6), 10 ** 6, allow_nan=False, allow_infinity=False, places=12))


@st.composite
def groups(draw: st.DrawFn) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """(the positional arguments but `tables`, the tables by name): every index the group needs valid
    (some negative: a list counts them from the end)."""

    def values(elements: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(elements, min_size=1, max_size=4))

    def index(of: list[Any]) -> int:
        return draw(st.integers(-len(of), len(of) - 1))

    n_buckets = draw(st.integers(1, 6))
    requests, tokens_v, unpriced, errors, unmetered = (values(INTS) for _ in range(5))
    cost_v = values(st.one_of(INTS, DECIMALS))  # pico ints, or Decimals (a weighted call's amount)
    series = draw(st.integers(1, 3))
    dur_counts = [values(INTS)[:1] * n_buckets for _ in range(series)]
    ttft_counts = [[draw(INTS) for _ in range(n_buckets)] for _ in range(series)]
    sums = st.one_of(FLOATS, st.integers(-5, 5))  # an int sum: Python's int + float
    dur_sums = [draw(sums) for _ in range(series)]
    ttft_sums = [draw(sums) for _ in range(series)]
    counted = draw(st.none() | st.just(values(INTS)))
    tables = {"requests": requests, "tokens": tokens_v, "cost": cost_v, "unpriced": unpriced, "errors": errors,
              "unmetered": unmetered, "duration_counts": dur_counts, "duration_sums": dur_sums,
              "ttft_counts": ttft_counts, "ttft_sums": ttft_sums, "counted": counted,
              "counted_idx": index(counted) if counted is not None else draw(st.integers(0, 3))}
    amounts = st.one_of(st.just(0), INTS)
    tokens = draw(st.lists(amounts, min_size=0, max_size=5))
    costs = draw(st.lists(st.one_of(amounts, DECIMALS), min_size=0, max_size=6))
    token_idx = tuple(index(tokens_v) if n > 0 or draw(st.booleans()) else None for n in tokens)
    cost_idx = tuple(index(cost_v) if n > 0 or draw(st.booleans()) else None for n in costs)
    priced = draw(st.booleans())
    ttfts = draw(st.lists(FLOATS, max_size=6))
    slots = (index(requests), draw(st.integers(-series, series - 1)),
             draw(st.integers(-series, series - 1)) if bool(ttfts) or draw(st.booleans()) else None,
             token_idx, cost_idx, None if priced and draw(st.booleans()) else index(unpriced),
             draw(st.none() | st.just(index(errors))), draw(st.none() | st.just(index(unmetered))), ("p", "m"))
    calls = draw(INTS)
    bucket_counts = st.lists(st.one_of(st.just(0), INTS), min_size=0, max_size=n_buckets)
    observed = st.one_of(FLOATS, FLOATS, st.integers(-3, 3))  # ints among floats: the generic path in between
    args = (slots, calls, tokens, costs, draw(bucket_counts), draw(st.lists(observed, max_size=12)),
            draw(bucket_counts), ttfts, priced)
    return args, tables


def as_tables(tables: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(tables.values())


def run(fn: Any, args: tuple[Any, ...], tables: tuple[Any, ...]) -> tuple[Any, Exception | None]:
    """(the tables after `fn`, the exception it raised or None), on deep copies."""
    args, tables = copy.deepcopy((args, tables))
    try:
        fn(*args, tables)
    except Exception as exc:
        return canon(tables), exc
    return canon(tables), None


@FUZZ
@given(groups())
def test_same_additions_as_the_pure_function(case: tuple[tuple[Any, ...], dict[str, Any]]) -> None:
    args, named = case
    tables = as_tables(named)
    got, error = run(c_add_group(), args, tables)
    want, pure_error = run(add_group_pure, args, tables)
    assert error is None and pure_error is None, (error, pure_error)
    assert got == want
    assert got != canon(tables) or not args[1]  # something was added (the requests)


BREAKS = ["request index out of range", "request index None", "token index missing", "token index out of range",
          "cost list a tuple", "unpriced index out of range", "error index a string", "too few slots",
          "too few tables", "more bucket counts than buckets", "a string in the duration sums", "a string calls",
          "counted index out of range", "a float added to a Decimal cost", "ttft index None"]


def broken(case: tuple[tuple[Any, ...], dict[str, Any]], how: str) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The case changed so that the pure function must raise somewhere (after some additions)."""
    case_args, named = copy.deepcopy(case)
    slots = list(case_args[0])
    args = list(case_args)
    named["requests"] = named["requests"][:1]
    slots[0] = 0
    args[1] = 7  # calls
    args[2] = [5, 0, 1]  # tokens
    slots[3] = (0, None, 0)
    args[7] = args[7] or [1.5]  # ttfts
    slots[2] = 0
    if how == "request index out of range":
        slots[0] = 1
    elif how == "request index None":
        slots[0] = None
    elif how == "token index missing":
        slots[3] = (0,)
    elif how == "token index out of range":
        slots[3] = (0, None, len(named["tokens"]))
    elif how == "cost list a tuple":
        args[8], args[3], slots[4] = True, [3], (0,)
        named["cost"] = tuple(named["cost"])
    elif how == "unpriced index out of range":
        args[8], slots[5] = False, len(named["unpriced"])
    elif how == "error index a string":
        slots[6] = "0"
    elif how == "too few slots":
        slots = slots[:7]
    elif how == "too few tables":
        named.pop("counted_idx")
    elif how == "more bucket counts than buckets":
        args[4] = [1] * (len(named["duration_counts"][0]) + 1)
        slots[1] = 0
    elif how == "a string in the duration sums":
        named["duration_sums"] = ["x"] * len(named["duration_sums"])
        args[5] = [0.5]
    elif how == "a string calls":
        args[1] = "7"
    elif how == "counted index out of range":
        named["counted"], named["counted_idx"] = [0], 1
    elif how == "a float added to a Decimal cost":
        args[8], args[3], slots[4] = True, [2.5], (0,)
        named["cost"] = [Decimal(1)]
    elif how == "ttft index None":
        slots[2] = None
    args[0] = tuple(slots)
    return tuple(args), as_tables(named)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(groups(), st.sampled_from(BREAKS))
def test_a_broken_group_raises_and_changes_nothing(case: tuple[tuple[Any, ...], dict[str, Any]], how: str) -> None:
    args, tables = broken(case, how)
    got, error = run(c_add_group(), args, tables)
    _, pure_error = run(add_group_pure, args, tables)
    assert pure_error is not None, how
    assert type(error) is type(pure_error), (how, error, pure_error)
    assert got == canon(tables), how  # all or nothing: the pure function may have added some already


def test_keywords_and_aliased_items_as_python_does() -> None:
    """Arguments by keyword; two additions to the same item (aliased lists) see each other, as in Python."""
    shared = [0, 0]
    tables = (shared, shared, [0], shared, shared, shared, [[0, 0]], [0.5], [[0, 0]], [0.25], shared, 1)
    args: dict[str, Any] = dict(slots=(0, 0, 0, (1, 1), (), 1, 0, -1, ()), calls=3, tokens=[2, 5], costs=[], duration_counts=[1, 2],
                durations=[0.25, 0.125], ttft_counts=[0, 4], ttfts=[0.5], priced=False)
    want = copy.deepcopy(tables)
    add_group_pure(**args, tables=want)
    c_add_group()(**args, tables=tables)
    assert canon(tables) == canon(want)
    assert shared == [6, 16]
    with pytest.raises(TypeError, match="missing required argument 'tables'"):
        c_add_group()(**args)
    with pytest.raises(TypeError, match="unexpected keyword argument 'table'"):
        c_add_group()(**args, table=tables)
    with pytest.raises(TypeError, match="multiple values for argument 'slots'"):
        c_add_group()(args["slots"], **args, tables=tables)
    with pytest.raises(TypeError, match="takes 10 positional arguments"):
        c_add_group()(*args.values(), tables, None)


def test_no_reference_or_memory_leak() -> None:
    """Successful and failing calls many times (big ints, Decimals, floats): allocated blocks stay flat."""
    fn = c_add_group()
    big = 2 ** 90
    slots = (0, 0, 0, (0, 1, 2, 3, 4), (0, 1, 2, 3, 4, 5), 0, 0, 0, ("p", "m"))
    tables = ([0], [big] * 5, [Decimal("0.5")] * 6, [0], [0], [0], [[0] * 4], [0.0], [[0] * 4], [0.0], [0], 0)
    good = (slots, 3, [big, 1, 0, 2, big], [5, 0, big, 1, 0, 7], [1, 0, big, 2], [0.5, 1.5, -0.0], [0, 1, 0, 1],
            [0.25], True)
    bad: list[tuple[Any, ...]] = [(slots, 3, [1], [], [9, 9, 9, 9, 9], [], [], [], True),  # one bucket too many
           (slots, "x", [1], [], [], [], [], [], True),  # str + int
           (slots[:3] + ((7,),) + slots[4:], 3, [1], [], [], [], [], [], True)]  # token index out of range

    def rounds(n: int) -> None:
        for _ in range(n):
            tables[0][0] = 0  # bounded values: the same sizes every round
            tables[1][:] = [big] * 5
            tables[2][:] = [Decimal("0.5")] * 6
            tables[7][0] = 0.0
            fn(*good, tables)
            for args in bad:
                try:
                    fn(*args, tables)
                except (IndexError, TypeError):
                    pass

    rounds(2000)
    blocks = sys.getallocatedblocks()
    refs = sys.getrefcount(big), sys.getrefcount(slots), sys.getrefcount(None)
    rounds(30000)
    assert sys.getallocatedblocks() - blocks < 200
    assert (sys.getrefcount(big), sys.getrefcount(slots)) == refs[:2]
    assert abs(sys.getrefcount(None) - refs[2]) < 200


# -- a real store: record_group gives what record_call gives for each call -------------------------

TTFT_OF = [None, 0.05, 0.3, 1.2, 0.0, 7.5]


def calls_like(n: int, status: str, error_type: str, unmetered: str) -> list[LLMCall]:
    return [LLMCall(service="svc", environment="prod", provider="openai", model="gpt-4o", operation="chat",
                    status=status, error_type=error_type, duration_s=[0.0, 0.07, 0.4, 2.5, 31.0, 0.001][i % 6] * (i + 1),
                    ttft_s=TTFT_OF[i % 6], tokens=TokenCounts(input=100 + i, cache_read=i % 3, cache_write=i % 2,
                                                              output=7 * i + 1, reasoning=i % 4),
                    end_ns=1_700_000_000_000_000_000 + i, unmetered=unmetered)
            for i in range(n)]


PRICES = {"input": Decimal("2.5"), "output": Decimal("10"), "cache_read": Decimal("1.25")}


def cost_of(i: int) -> Cost:
    pico = (250_000 * (i + 1), 1_250 * (i % 3), 3_000 * (i % 2), 10_000_000 * i + 7, 0, 13 + 2 ** 64 * (i % 2))
    by_type = {name: Decimal(p).scaleb(-12) for name, p in zip(contract.COST_TYPES, pico)}
    return Cost(by_type=by_type, price_source="genai-prices", price_version="v", price_entry="openai/gpt-4o",
                unit_prices=PRICES, pico=pico)


def group_of(calls: list[LLMCall], costs: list[Cost] | None) -> tuple[Any, ...]:
    """record_group's arguments for `calls` (as metering.tally sums them)."""
    dur_counts = [0] * (len(contract.DURATION_BUCKETS) + 1)
    ttft_counts = [0] * (len(contract.TTFT_BUCKETS) + 1)
    durations, ttfts = [], []
    for call in calls:
        d = max(call.duration_s, 0.0)
        dur_counts[bisect_left(contract.DURATION_BUCKETS, d)] += 1
        durations.append(d)
        if call.ttft_s is not None:
            ttft_counts[bisect_left(contract.TTFT_BUCKETS, call.ttft_s)] += 1
            ttfts.append(call.ttft_s)
    tokens = [sum(getattr(c.tokens, name) for c in calls) for name in contract.TOKEN_TYPES]
    pico = [sum(c.pico[k] for c in costs) for k in range(6)] if costs is not None else [0] * 6
    return (calls[0], PRICES if costs is not None else None, len(calls), tokens, pico, dur_counts, durations,
            ttft_counts, ttfts)


@pytest.mark.parametrize("how", ["c", "pure"])
@pytest.mark.parametrize(("status", "error_type", "unmetered", "priced"), [
    ("ok", "", "", True), ("ok", "", "", False), ("error", "timeout", "", True), ("ok", "", "no_usage", False)])
def test_record_group_counts_what_record_call_counts(how: str, status: str, error_type: str, unmetered: str,
                                                     priced: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recording, "add_group", c_add_group() if how == "c" else add_group_pure)
    calls = calls_like(40, status, error_type, unmetered)
    costs = [cost_of(i) for i in range(len(calls))] if priced else None
    one_by_one, grouped = UsageMetrics(Config(), serve=True), UsageMetrics(Config(), serve=True)
    for store in (one_by_one, grouped):  # the first call makes every series the group touches
        store.record_call(calls[1], costs[1] if costs else None)
    rest = calls[:1] + calls[2:]
    rest_costs = costs[:1] + costs[2:] if costs else None
    for i, call in enumerate(rest):
        one_by_one.record_call(call, rest_costs[i] if rest_costs else None)
    for half in (slice(0, 13), slice(13, None)):  # two groups
        assert grouped.record_group(*group_of(rest[half], rest_costs[half] if rest_costs else None))
    want, got = one_by_one.samples(), grouped.samples()
    assert set(got) == set(want)
    differ = {}
    for key, value in want.items():
        if key[0].endswith("_sum"):
            if abs(got[key] - value) > 1e-9 * abs(value):
                differ[key] = (got[key], value)
        elif got[key] != value:
            differ[key] = (got[key], value)
    assert not differ
    cost_name = contract.Contract.from_config(Config()).names.cost
    exact = [dict(zip(store.family(cost_name).keys, store.family(cost_name).values)) for store in (one_by_one, grouped)]
    assert exact[0] == exact[1]  # the money, exactly
    assert bool(exact[0]) == priced
