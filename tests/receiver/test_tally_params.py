"""The SQLite insert parameters of bulk-counted calls: `TallyParams.params` equals `params_of` over the
`tally_rows` Rows (the path every other call takes), and the C `_tally_params.params` equals
`params_pure` (the reference) on real tallies, generated taken calls and odd values, errors included, or
answers None for a shape it does not model (then the reference runs): on every input shape the
accelerated path gives the reference's result or its exception; it keeps no references."""

from __future__ import annotations

import gc
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.otlp_bodies import Stamper, template_body
from genai_meter.collector_processor.metering import build_meter
from genai_meter.collector_processor.metering.tally import Taken
from genai_meter.collector_processor.receiver import tally_rows as tr
from genai_meter.collector_processor.receiver.decode import parse_lean
from genai_meter.collector_processor.receiver.spans import SpanExtractor
from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics
from genai_meter.ledger.rows import RowBuilder
from genai_meter.ledger.sqlite_params import Dictionaries, params_of
from genai_meter.ledger.sqlite_schema import open_write


def _c_params() -> Any:
    from genai_meter.collector_processor.receiver import _tally_params  # fails (not skips) when not built

    return _tally_params.params


def _tallies(count: int) -> list[Any]:
    """Tallies of benchmark requests (many label sets, cache reads or not), each after its request."""
    config = Config()
    meter = build_meter(config, [UsageMetrics(config, serve=True)])
    meter.bulk = True
    extractor = SpanExtractor()
    out = []
    for body in Stamper(template_body(1.0)).bodies(count):
        spans = extractor.extract(parse_lean(body)).candidates
        tally = meter.tally()
        assert tally is not None
        i = 0
        while i < len(spans):
            i = tally.run_pure(spans, i)
            if i < len(spans):
                meter.assess(spans[i])
                i += 1
        out.append(tally)
    return out


@pytest.fixture
def dicts(tmp_path: Path) -> Dictionaries:
    open_write(tmp_path / "ledger.db", 5.0).close()  # migrated
    return Dictionaries(tmp_path / "ledger.db", 5.0)


def test_tally_params_equal_the_params_of_the_rows_of_each_call(dicts: Dictionaries) -> None:
    builder = RowBuilder(Config())
    maker = TallyParamsBoth(builder, dicts)
    compared = 0
    for tally in _tallies(4)[1:]:  # the first request teaches the templates
        assert len(tally.taken) > 400
        want = params_of(tr.tally_rows(tally, builder), dicts)
        assert maker.pure(tally) == want
        assert maker.fast(tally) == want
        compared += len(want)
    assert compared > 1200
    assert len(dicts.labelsets) > 100 and set(dicts.failing.values()) == {0}


class TallyParamsBoth:
    """One TallyParams (its heads) run with either per-call builder."""

    def __init__(self, builder: RowBuilder, dicts: Dictionaries) -> None:
        self.made = tr.TallyParams(builder, dicts)

    def pure(self, tally: Any) -> list[Any]:
        return tr.params_pure(tally.taken, self.made._group_heads(tally))

    def fast(self, tally: Any) -> list[Any]:
        return _c_params()(tally.taken, self.made._group_heads(tally))


HEAD = (7, "", "", 3, "", "", 0, 1_000_000, 0)
_SECONDS = st.one_of(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e9),
                     st.integers(0, 10**6).map(lambda n: n / 2_000_000),  # x.5 µs: half-even rounding
                     st.integers(-5, 10**12))
_INT = st.one_of(st.integers(0, 10**9), st.integers(2**62, 2**64))


@st.composite
def _taken(draw: st.DrawFn) -> Taken:
    return Taken(draw(st.integers(0, 2)), tuple(draw(st.lists(_INT, min_size=5, max_size=5))),  # type: ignore[arg-type]
                 tuple(draw(st.lists(_INT, min_size=6, max_size=6))),  # type: ignore[arg-type]
                 draw(_SECONDS), draw(st.one_of(st.none(), _SECONDS)), draw(st.integers(0, 2**63 - 1)),
                 draw(st.binary(min_size=16, max_size=16)), draw(st.binary(min_size=8, max_size=8)),
                 draw(st.sampled_from([b"", b"\x01" * 8])))


@settings(max_examples=300, deadline=None)
@given(st.lists(_taken(), max_size=20))
def test_c_params_equal_the_reference_on_generated_calls(taken: list[Taken]) -> None:
    heads = [HEAD, (8, "conv", "user", 4, "no price", "", 1, 250_000, 1), HEAD]
    want = tr.params_pure(taken, heads)
    got = _c_params()(taken, heads)
    assert got is not None, "the C code gave up on the shapes a Tally makes"
    assert got == want
    assert [tuple(map(type, row)) for row in got] == [tuple(map(type, row)) for row in want]


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:  # the comparison is of the exception's type
        return type(exc)


def _accelerated(taken: Any, heads: Any) -> Any:
    """What `TallyParams.params` gives with the accelerator on: the C result, or the reference's when C says None."""
    made = _c_params()(taken, heads)
    return tr.params_pure(taken, heads) if made is None else made


GOOD = Taken(0, (1, 2, 3, 4, 5), (6, 7, 8, 9, 10, 11), 0.5, None, 5, b"t" * 16, b"s" * 8, b"")


class _Text(str):
    """A str subclass: a value a hostile instrumentation could put anywhere."""


# shapes no Tally makes: the reference decides what they give (a result or an exception), the C path the same
SHAPES: dict[str, tuple[Any, Any]] = {
    "a list head": ([GOOD], [list(HEAD)]),
    "list costs": ([GOOD._replace(costs=[6, 7, 8, 9, 10, 11])], [HEAD]),
    "six tokens": ([GOOD._replace(tokens=(1, 2, 3, 4, 5, 6))], [HEAD]),
    "empty costs": ([GOOD._replace(costs=())], [HEAD]),
    "costs of floats": ([GOOD._replace(costs=(0.5, 1, 2, 3, 4, 5))], [HEAD]),
    "list tokens": ([GOOD._replace(tokens=[1, 2, 3, 4, 5])], [HEAD]),
    "a plain tuple for a Taken": ([tuple(GOOD)], [HEAD]),
    "taken as a tuple": ((GOOD, GOOD), [HEAD]),
    "heads as a dict": ([GOOD], {0: HEAD}),
    "heads as a tuple": ([GOOD], (HEAD,)),
    "a bool group": ([GOOD._replace(group=True)], [HEAD, HEAD]),
    "a negative group": ([GOOD._replace(group=-1)], [HEAD]),
    "a group past the heads": ([GOOD._replace(group=3)], [HEAD]),
    "a group too large for an index": ([GOOD._replace(group=2**70)], [HEAD]),
    "an int duration and ttft": ([GOOD._replace(duration_s=3, ttft_s=-2)], [HEAD]),
    "a str duration": ([GOOD._replace(duration_s="1")], [HEAD]),
    "bytearray ids": ([GOOD._replace(trace_id=bytearray(16))], [HEAD]),
    "an int id": ([GOOD._replace(parent_span_id=3)], [HEAD]),
    "str subclasses in the head": ([GOOD], [(7, _Text("c"), "", 3, "", "", 0, 1_000_000, 0)]),
    "a short head": ([GOOD], [HEAD[:8]]),
    "a long head": ([GOOD], [HEAD + (1,)]),
    "a cost that is text": ([GOOD._replace(costs=(1, "x", 3, 4, 5, 6))], [HEAD]),
    "a good call, then an odd one": ([GOOD, GOOD._replace(costs=[1, 2, 3, 4, 5, 6])], [HEAD]),
    "an infinite ttft, then an odd call": ([GOOD._replace(ttft_s=math.inf), GOOD._replace(costs=())], [HEAD]),
}


@pytest.mark.parametrize("case", sorted(SHAPES))
def test_every_shape_gives_what_the_reference_gives(case: str) -> None:
    """The C code computed these shapes (or raised on them) unlike the reference: a list head, list costs, six
    tokens and empty costs raised in C and not in the reference; a plain tuple passed in C and not in it."""
    taken, heads = SHAPES[case]
    want = _outcome(tr.params_pure, taken, heads)
    got = _outcome(_accelerated, taken, heads)
    assert got == want
    if isinstance(want, list):
        assert [tuple(map(type, row)) for row in got] == [tuple(map(type, row)) for row in want]


@pytest.mark.parametrize("duration", [math.inf, -math.inf, math.nan, 1e300, -0.0000004, 2.5e-6, 3.5e-6])
def test_odd_durations_give_what_the_reference_gives(duration: float) -> None:
    taken = [Taken(0, (1, 2, 3, 4, 5), (6, 7, 8, 9, 10, 11), duration, duration, 5, b"t" * 16, b"s" * 8, b"")]
    assert _outcome(_c_params(), taken, [HEAD]) == _outcome(tr.params_pure, taken, [HEAD])


def test_the_shapes_c_models_are_computed_in_c() -> None:
    """A group past the heads raises in C (IndexError, as the reference); the shapes of real calls never give None."""
    assert _outcome(_c_params(), [GOOD._replace(group=3)], [HEAD]) is IndexError
    assert _c_params()([GOOD, GOOD._replace(ttft_s=0.25, duration_s=7)], [HEAD]) == tr.params_pure(
        [GOOD, GOOD._replace(ttft_s=0.25, duration_s=7)], [HEAD])


def test_c_params_keep_no_references() -> None:
    taken = [Taken(0, (1, 2, 3, 4, 5), (6, 7, 8, 9, 10, 2**70), 0.25, 0.125, 5, b"t" * 16, b"s" * 8, b"p" * 8)]
    heads = [HEAD]
    fn = _c_params()
    for _ in range(200):
        fn(taken, heads)
        _outcome(fn, [taken[0]._replace(group=1)], heads)
    gc.collect()
    before = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else None
    refs = [sys.getrefcount(x) for x in (taken[0], heads[0], taken[0].costs, taken[0].trace_id)]
    for _ in range(2000):
        fn(taken, heads)
        _outcome(fn, [taken[0]._replace(group=1)], heads)
    gc.collect()
    assert [sys.getrefcount(x) for x in (taken[0], heads[0], taken[0].costs, taken[0].trace_id)] == refs
    if before is not None:
        assert abs(sys.gettotalrefcount() - before) < 100
