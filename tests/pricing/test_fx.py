"""Dated exchange rates and the conversion rule of pricing.fx: the call's day, summed per day, rounded once."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from genai_meter.config import ConfigError, load_config, parse_config
from genai_meter.pricing.fx import FxError, FxTable, load_fx, parse_csv, round_to

D = Decimal
MON, TUE, FRI, SAT, SUN = date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 6), date(2026, 11, 7), date(2026, 11, 8)
TABLE = FxTable.of({"EUR": {MON: D("0.9241"), TUE: D("0.9250"), FRI: D("0.9300")},
                    "JPY": {MON: D("151.37")}}, max_gap_days=3)


def test_the_rate_of_a_day_is_that_day_s_else_the_newest_before_it_within_the_gap() -> None:
    assert TABLE.rate("EUR", MON) == D("0.9241")
    assert TABLE.rate("EUR", TUE) == D("0.9250")
    assert TABLE.rate("EUR", date(2026, 11, 4)) == D("0.9250")  # Wednesday: no rate, Tuesday's
    assert TABLE.rate("EUR", SUN) == D("0.9300")  # the weekend takes Friday's
    assert TABLE.rate("USD", date(1999, 1, 1)) == 1


@pytest.mark.parametrize(("currency", "day", "message"), [
    ("EUR", date(2026, 11, 1), "no EUR rate on or before 2026-11-01 (the first is of 2026-11-02)"),
    ("EUR", date(2026, 11, 10), "no EUR rate for 2026-11-10: the newest before it is of 2026-11-06, more than 3 days"),
    ("GBP", MON, "no exchange rate for GBP (pricing.fx has rates for: EUR, JPY)"),
])
def test_a_missing_rate_is_an_error_naming_currency_and_day(currency: str, day: date, message: str) -> None:
    with pytest.raises(FxError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        TABLE.rate(currency, day)


def test_one_amount_is_exact_then_rounded_once_half_even() -> None:
    # 1.234567890123 USD x 0.9241 = 1.1408641872626643 EUR
    assert TABLE.convert(1_234_567_890_123, "EUR", MON) == D("1.140864187263")
    assert TABLE.convert(1_234_567_890_123, "EUR", MON, D("0.01")) == D("1.14")
    # 0.125 USD x 151.37 = 18.92125 JPY: half-even at 0.0001 -> 18.9212 (2 is even), at 1 -> 19
    assert TABLE.convert(125_000_000_000, "JPY", MON, D("0.0001")) == D("18.9212")
    assert TABLE.convert(125_000_000_000, "JPY", MON, D("1")) == D("19")
    assert round_to(Fraction(5, 2), D("1")) == 2 and round_to(Fraction(7, 2), D("1")) == 4
    with pytest.raises(ValueError, match="power of ten"):
        round_to(Fraction(1), D("0.05"))


def test_daily_totals_convert_at_their_day_s_rate_and_round_once() -> None:
    # three days of 0.005 USD each: converted exactly per day, summed, rounded once to cents
    days = {MON: 5_000_000_000, TUE: 5_000_000_000, SAT: 5_000_000_000}
    exact = D("0.005") * D("0.9241") + D("0.005") * D("0.9250") + D("0.005") * D("0.9300")  # 0.0138955
    assert TABLE.convert_days(days, "EUR") == exact.quantize(D("1e-12"))
    assert TABLE.convert_days(days, "EUR", D("0.01")) == D("0.01")  # once: 0.0138955 -> 0.01
    # rounding each day to cents first would give 0.00 + 0.00 + 0.00: the rule rounds once, at the end
    assert sum(TABLE.convert(p, "EUR", d, D("0.01")) for d, p in days.items()) == 0
    assert TABLE.convert_days({}, "EUR") == 0


def test_csv_and_yaml_files_and_inline_rates_from_the_config(tmp_path: Path) -> None:
    (tmp_path / "fx.csv").write_text("# ECB reference rates, inverted to USD base\ndate,EUR,GBP\n"
                                     "2026-11-02,0.9241,0.7712\n2026-11-03,0.9250,\n")
    (tmp_path / "genai-meter.yaml").write_text(
        "pricing:\n  fx:\n    file: fx.csv\n    max_gap_days: 4\n"
        "    rates:\n      2026-11-03: {EUR: '0.9260', CHF: '0.8011'}\n")
    fx = load_fx(load_config(tmp_path / "genai-meter.yaml"))
    assert fx is not None and fx.currencies == ["CHF", "EUR", "GBP"] and fx.max_gap_days == 4
    assert fx.rate("EUR", MON) == D("0.9241") and fx.rate("EUR", TUE) == D("0.9260")  # inline wins
    assert fx.rate("GBP", TUE) == D("0.7712")  # an empty cell: Monday's
    (tmp_path / "fx.yaml").write_text("2026-11-02: {EUR: '0.9241'}\n2026-11-03: {EUR: 0.925}\n")
    fx = load_fx(parse_config({"pricing": {"fx": {"file": str(tmp_path / "fx.yaml")}}}))
    assert fx is not None and fx.rate("EUR", TUE) == D("0.925")
    assert load_fx(parse_config({})) is None


@pytest.mark.parametrize(("csv_text", "message"), [
    ("day,EUR\n2026-11-02,1\n", "line 1: the header must be date,<currency>"),
    ("date,EURO\n", "line 1: expected an ISO 4217 currency code"),
    ("date,USD\n", "USD is the base currency"),
    ("date,EUR\n2026-13-02,1\n", "line 2: expected a date"),
    ("date,EUR\n2026-11-02,abc\n", "line 2, EUR: expected a decimal rate"),
    ("date,EUR\n2026-11-02,-1\n", "line 2, EUR: a rate must be a positive number"),
    ("date,EUR\n2026-11-02,1,2\n", "line 2: 3 cells, the header has 2"),
])
def test_bad_csv_files_name_the_line(csv_text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_csv(csv_text, "fx.csv")


def test_bad_config_and_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read exchange rates"):
        load_fx(parse_config({"pricing": {"fx": {"file": str(tmp_path / "missing.csv")}}}))
    (tmp_path / "dup.csv").write_text("date,EUR\n2026-11-02,1\n2026-11-02,2\n")
    with pytest.raises(ConfigError, match="EUR has more than one rate for 2026-11-02"):
        load_fx(parse_config({"pricing": {"fx": {"file": str(tmp_path / "dup.csv")}}}))
    with pytest.raises(ConfigError, match="pricing.fx.rates: 2026-11-02: expected an ISO 4217"):
        load_fx(parse_config({"pricing": {"fx": {"rates": {"2026-11-02": {"eur": "1"}}}}}))
    with pytest.raises(ConfigError, match="pricing.fx.max_gap_days"):
        parse_config({"pricing": {"fx": {"max_gap_days": -1}}})
