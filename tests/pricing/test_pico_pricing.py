"""The integer (10^-12 USD) pricing of `Plan.cost` gives exactly the Decimal path's rounded values."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_EVEN, Decimal

from genai_meter.money import PICO, to_pico
from genai_meter.pricing.rates import Plan, Rates, build_plan, pico_cost, pico_ratio
from genai_meter.records import COST_CLASSES, Cost, TokenCounts


def _decimal_cost(rates: Rates, tokens: TokenCounts, cache_write_1h: bool) -> dict[str, Decimal]:
    """The straightforward Decimal arithmetic (what `Plan.cost` did before the integer path)."""
    def rounded(rate: Decimal, n: int) -> Decimal:
        return (rate.scaleb(-6) * n).quantize(PICO, rounding=ROUND_HALF_EVEN) if n else Decimal(0)

    write_rate = rates.cache_write_1h if cache_write_1h else rates.cache_write
    return {"input": rounded(rates.input, tokens.input), "cache_read": rounded(rates.cache_read, tokens.cache_read),
            "cache_write": rounded(write_rate, tokens.cache_write), "output": rounded(rates.output, tokens.output),
            "reasoning": rounded(rates.reasoning, tokens.reasoning),
            "request": rates.per_request.quantize(PICO, rounding=ROUND_HALF_EVEN)}


def _rate(rng: random.Random) -> Decimal:
    kind = rng.randrange(5)
    if kind == 0:
        return Decimal(rng.randrange(0, 100_000)).scaleb(-rng.randrange(0, 5))  # 2.5, 0.075, 15
    if kind == 1:
        return Decimal(rng.randrange(1, 10**6)) * Decimal("0.85") / Decimal(7)  # a discount: 28 digits
    if kind == 2:
        return Decimal(rng.randrange(1, 10**9)).scaleb(-rng.randrange(6, 14))  # tiny per-million rates
    if kind == 3:
        return Decimal(rng.randrange(1, 1000)) / Decimal(3)
    return Decimal(0)


def test_every_class_equals_the_decimal_arithmetic_to_the_last_digit() -> None:
    rng = random.Random(13)
    for _ in range(3000):
        rates = Rates(*(_rate(rng) for _ in range(7)))
        plan = Plan("overrides", "v", "p/m", (), (rates,))
        tokens = TokenCounts(*(rng.choice((0, rng.randrange(1, 10), rng.randrange(1, 10**6), rng.randrange(1, 10**12)))
                               for _ in range(5)))
        one_hour = rng.random() < 0.3
        cost = plan.cost(tokens, one_hour)
        expected = _decimal_cost(rates, tokens, one_hour)
        assert cost.by_type == expected
        # the same Decimal, digit for digit (coefficient and exponent), not only the same number
        assert {k: v.as_tuple() for k, v in cost.by_type.items()} == {k: v.as_tuple() for k, v in expected.items()}
        assert cost.pico == tuple(to_pico(expected[name]) for name in COST_CLASSES)


def test_half_even_at_the_boundary() -> None:
    # 1 token at 0.0000005 USD per million = 0.5 pico: rounds to 0; 3 tokens = 1.5 pico: rounds to 2
    assert pico_ratio(Decimal("0.0000005").scaleb(-6))[:2] == (5, 10)
    assert [pico_cost(n, 5, 10) for n in (1, 2, 3, 5, 7)] == [0, 1, 2, 2, 4]
    assert [pico_cost(n, -5, 10) for n in (1, 3)] == [0, -2]
    plan = build_plan({"input": (Decimal("0.0000005"), ())}, source="overrides", version="v", entry="e")
    assert plan.cost(TokenCounts(input=3)).by_type["input"] == Decimal("2E-12")
    assert plan.cost(TokenCounts(input=3)).pico[0] == 2


def test_a_cost_without_pico_computes_it_from_by_type() -> None:
    cost = Cost({"input": Decimal("0.0000025"), "output": Decimal("1.5")}, "genai-prices", "v", "e")
    assert cost.picos() == (2_500_000, 0, 0, 1_500_000_000_000, 0, 0)
