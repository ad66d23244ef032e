"""The streamed CSV of a table writes the cells `cell_text` and `csv_lines` would (the reference), and a
group row holds the figures of its definition: exactness, unknown cost as blanks, shares and per-call values."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from genai_meter.ledger.model import Totals
from genai_meter.ledger.units import UnitSums
from genai_meter.money import usd_text
from genai_meter.reports.render.exactness import cost_known, exactness
from genai_meter.reports.render.tables import (
    COST_CLASSES,
    TOKEN_CLASSES,
    Column,
    Table,
    cell_text,
    group_columns,
    group_row,
    known,
    per,
    per_priced_call,
    ratio,
    tokens_in,
    tokens_out,
)
from genai_meter.reports.render.text import csv_line, csv_lines, table_csv, usd12


def _totals(key: str, calls: int, unpriced: int = 0, unmetered: int = 0, partial: int = 0, scale: int = 1) -> Totals:
    units = UnitSums()
    if partial:
        units.add("audio_input", 7, 123_456 * scale)
        units.partial = partial
    return Totals(key=(key,), calls=calls, errors=calls // 3, unpriced=unpriced, unmetered=unmetered,
                  tokens={c: (i + 1) * 1000 * scale for i, c in enumerate(TOKEN_CLASSES)},
                  cost_pico={c: (i + 1) * 10**11 * scale + 7 for i, c in enumerate(COST_CLASSES)}, units=units)


CASES = [_totals("acme", 30), _totals("=HYPERLINK(\"x\")", 5, unpriced=5), _totals("-3", 4, unmetered=2),
         _totals("b,c\"d", 9, unpriced=2, partial=1, scale=3), _totals("", 0), _totals("@sum", 1, scale=10**6)]


def _reference_row(t: Totals, whole: int) -> list[object]:
    """`group_row` as its columns define it, one helper per figure."""
    return [*t.key, t.calls, t.calls - t.errors, t.errors, ratio(t.errors, t.calls),
            *(t.tokens.get(c, 0) for c in TOKEN_CLASSES), tokens_in(t), tokens_out(t), t.tokens_total,
            per(t.tokens_total, t.calls), known(t, t.cost_total_pico), per_priced_call(t),
            *(known(t, t.cost_pico.get(c, 0)) for c in COST_CLASSES), known(t, t.units.cost_total_pico),
            t.unpriced + t.invalid, t.unmetered, t.units.partial, exactness(t),
            ratio(t.cost_total_pico, whole) if cost_known(t) else None]


def test_group_rows_hold_every_figure_of_their_definition() -> None:
    whole = sum(t.cost_total_pico for t in CASES)
    for t in CASES:
        assert group_row(t, whole) == _reference_row(t, whole)
    assert group_row(CASES[1], whole)[len(TOKEN_CLASSES) + 10] is None  # every call unpriced: no cost, never 0
    assert group_row(CASES[3], whole)[-2] == "incomplete" and group_row(CASES[2], whole)[-2] == "upper_bound"


def test_the_streamed_csv_writes_the_reference_cells() -> None:
    kinds = [Column("name", "Name", "text"), Column("n", "N", "int"), Column("usd", "USD", "usd"),
             Column("share", "Share", "ratio"), Column("d", "D", "decimal"), Column("at", "At", "time")]
    rows: list[list[object]] = [
        ["=1+1", 3, -5, Decimal("0.500000"), Decimal("-1.25"), 1_795_176_000 * 10**9 + 5],
        ["a,b\n\"c\"", 0, 0, None, None, None],
        ["-0.5", -2, 10**20 + 1, Decimal("0"), Decimal("12"), 1_795_176_000 * 10**9],
        [None, None, None, Decimal("1.000000"), Decimal("0.000001"), 0],
    ]
    table = Table("t", "T", kinds, rows)  # type: ignore[arg-type]
    reference = csv_line(c.key for c in kinds) + csv_lines([cell_text(c.kind, v) for c, v in zip(kinds, row)]
                                                          for row in rows)  # type: ignore[arg-type]
    assert "".join(table_csv(table)) == reference
    assert "'=1+1" in reference and "-0.000000000005" in reference and "\r\n-0.5,-2," in reference


def test_a_group_table_streams_the_reference_csv() -> None:
    columns = group_columns(["customer"])
    whole = sum(t.cost_total_pico for t in CASES)
    table = Table("groups", "Groups", columns, [group_row(t, whole) for t in CASES])
    reference = csv_line(c.key for c in columns) + csv_lines(
        [cell_text(c.kind, v) for c, v in zip(columns, _reference_row(t, whole))] for t in CASES)  # type: ignore[arg-type]
    assert "".join(table_csv(table)) == reference


@given(st.one_of(st.integers(-10**20, 10**20), st.integers(-10**13, 10**13)))
def test_usd12_writes_the_text_of_usd_text(pico: int) -> None:
    assert usd12(pico) == usd_text(pico)
