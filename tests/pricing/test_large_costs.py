"""`Plan.cost` is exact integer arithmetic for any finite rate and any token count: an absurd price or
count gives an absurd but exact cost, never `decimal.InvalidOperation` (the Meter then flags a call the
ledger cannot hold, `pico_in_range`: tests/metering/test_cost_limit.py)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from genai_meter import contract
from genai_meter.cli import main
from genai_meter.config import Config
from genai_meter.pricing import PriceBook
from genai_meter.pricing.rates import PICO_LIMIT, Plan, Rates, build_plan, pico_in_range, pico_ratio
from genai_meter.records import TokenCounts

HUGE = """\
- provider: self-hosted
  model: huge
  prices: {input_mtok: "1000000000000000", output_mtok: "1000000000000000", per_request: "12345678.123456789"}
"""


def test_an_absurd_override_prices_exactly(tmp_path: Path) -> None:
    path = tmp_path / "o.yaml"
    path.write_text(HUGE, encoding="utf-8")
    book = PriceBook.from_config(Config.model_validate({"pricing": {"overrides": str(path)}}))
    for n in (10, 10**9, 10**12, 10**16, 2**62, 10**40):
        cost = book.price("self-hosted", "huge", TokenCounts(n, 0, 0, n, 0), datetime(2026, 1, 1))
        assert cost is not None
        # 10^15 USD per million tokens = 10^21 pico a token; the fee 12345678.123456789 USD
        assert cost.pico == (n * 10**21, 0, 0, n * 10**21, 0, 12_345_678_123_456_789_000)
        assert not pico_in_range(cost.pico)


def _exact(rate_per_million: Decimal, n: int) -> int:
    """n tokens at `rate_per_million` in 10^-12 USD, rounded half-even, with fractions (no precision limit)."""
    return round(Fraction(rate_per_million) * n * 10**6)  # round(): half-even on a Fraction


@pytest.mark.parametrize("rate", [Decimal(1) / Decimal(3), Decimal("0.85") * 7 / 9, Decimal("123456789.987654321"),
                                  Decimal("0.000000000000000000000000001"), Decimal("1E+30")])
@pytest.mark.parametrize("n", [1, 10**12, 10**20 + 7, 2**100 + 1, 5 * 10**50 + 3])
def test_any_count_at_any_rate_is_exact(rate: Decimal, n: int) -> None:
    plan = build_plan({"input": (rate, ()), "output": (rate, ())}, source="overrides", version="v", entry="e")
    cost = plan.cost(TokenCounts(input=n, output=n))
    assert cost.pico[0] == cost.pico[3] == _exact(rate, n)


def test_a_fee_beyond_decimal_precision_is_exact() -> None:
    plan = Plan("overrides", "v", "p/m", (), (Rates(*([Decimal(0)] * 6), per_request=Decimal("1E+30")),))
    assert plan.cost(TokenCounts()).pico == (0, 0, 0, 0, 0, 10**42)
    plan = Plan("overrides", "v", "p/m", (), (Rates(*([Decimal(0)] * 6),
                                                    per_request=Decimal("12345678901234567890.1234567890125")),))
    assert plan.cost(TokenCounts()).pico[5] == 12345678901234567890_123456789012  # half-even: ...0125 -> ...012


def test_non_finite_rates_are_refused_when_built() -> None:
    for bad in (Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")):
        with pytest.raises(ValueError, match="finite"):
            pico_ratio(bad)
        with pytest.raises(ValueError, match="finite"):
            Rates(bad, *([Decimal(0)] * 6))


def test_the_range_a_ledger_can_hold() -> None:
    assert PICO_LIMIT == 2**63
    assert pico_in_range((0, 0, 0, 0, 0, 2**63 - 1))
    assert pico_in_range((2**62, 2**62 - 2, 0, 0, 0, 1))  # the total 2^63 - 1
    assert not pico_in_range((2**62, 2**62 - 1, 0, 0, 0, 1))  # each class fits, the total is 2^63
    assert not pico_in_range((2**63, 0, 0, 0, 0, 0))
    assert not pico_in_range((2**64, -(2**63), 0, 0, 0, 0))  # a class out of range, whatever the total
    assert pico_in_range((-(2**63) + 1, 0, 0, 0, 0, 0))
    assert not pico_in_range((-(2**62), -(2**62), 0, 0, 0, 0))


def test_the_price_command_says_such_a_call_is_invalid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GENAI_METER_CONFIG", raising=False)
    (tmp_path / "o.yaml").write_text(HUGE, encoding="utf-8")
    (tmp_path / "c.yaml").write_text(f"pricing:\n  overrides: {tmp_path / 'o.yaml'}\n", encoding="utf-8")
    assert main(["price", "--config", str(tmp_path / "c.yaml"), "self-hosted", "huge", "--input", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["invalid"] == contract.INVALID_COST
    assert report["total_usd"] == "1012345678.123456789"  # 10^9 USD a token, and the fee: exact
    assert main(["price", "--config", str(tmp_path / "c.yaml"), "self-hosted", "huge", "--input", str(10**20),
                 "--output", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)  # past Decimal's 28 digits, still to the last one
    assert report["cost_usd"]["input"] == str(10**29)
    assert report["total_usd"] == "100000000000000000003012345678.123456789"
    assert main(["price", "--config", str(tmp_path / "c.yaml"), "openai", "gpt-4o", "--input", "1", "--json"]) == 0
    assert "invalid" not in json.loads(capsys.readouterr().out)
