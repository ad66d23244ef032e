"""The store's cost family counts integer 10^-12 USD (`Cost.pico`) and reads out exact Decimal USD."""

from __future__ import annotations

import random
from decimal import Decimal

from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics
from genai_meter.pricing.rates import build_plan
from genai_meter.records import Cost, LLMCall, TokenCounts

END_NS = 1_795_449_600 * 10**9
LABELS = dict(service_name="s", environment="e", provider="openai", model="m", operation="chat", service_tier="default", customer="",
              feature="", organization="", project="")


def _call(tokens: TokenCounts, weight: float = 1.0) -> LLMCall:
    call = LLMCall("s", "e", "openai", "m", "chat", "ok", "", 0.5, None, tokens, END_NS)
    call.sample_weight = weight
    return call


def test_priced_calls_sum_exactly_and_render_as_the_nearest_float() -> None:
    plan = build_plan({"input": (Decimal("2.5"), ()), "output": (Decimal("10.000000000007"), ()),
                       "per_request": (Decimal("0.0001"), ())}, source="overrides", version="v", entry="e")
    store = UsageMetrics(Config())
    rng = random.Random(5)
    expected: dict[str, Decimal] = {"input": Decimal(0), "output": Decimal(0), "request": Decimal(0)}
    for _ in range(2000):
        tokens = TokenCounts(input=rng.randrange(1, 10**6), output=rng.randrange(1, 10**5))
        cost = plan.cost(tokens)
        assert cost.pico
        for name in expected:
            expected[name] += cost.by_type[name]
        store.record_call(_call(tokens), cost)
    for name, total in expected.items():
        assert store.get_decimal("llm_cost_usd_total", **LABELS, cost_type=name) == total
        line = next(line for line in store.render().decode().splitlines()
                    if line.startswith("llm_cost_usd_total{") and f'cost_type="{name}"' in line)
        assert line.rsplit(" ", 1)[1] == repr(float(total))


def test_costs_built_elsewhere_and_weighted_calls_stay_exact() -> None:
    store = UsageMetrics(Config())
    odd = Cost({"input": Decimal("0.0000000000005"), "output": Decimal("1.25")}, "t", "1", "e")  # no pico, unrounded
    store.record_call(_call(TokenCounts(input=1, output=1)), odd)
    store.record_call(_call(TokenCounts(input=1, output=1), weight=4.0), odd)
    assert store.get_decimal("llm_cost_usd_total", **LABELS, cost_type="input") == Decimal("0.0000000000025")
    assert store.get_decimal("llm_cost_usd_total", **LABELS, cost_type="output") == Decimal("6.25")


def test_a_large_total_renders_like_float_of_the_decimal() -> None:
    plan = build_plan({"output": (Decimal("60000"), ())}, source="overrides", version="v", entry="e")
    store = UsageMetrics(Config())
    total = Decimal(0)
    for _ in range(40):  # 40 x $60,000 = $2.4M: past 2^53 pico, rendered through Decimal
        cost = plan.cost(TokenCounts(output=10**6))
        total += cost.by_type["output"]
        store.record_call(_call(TokenCounts(output=10**6)), cost)
    assert store.get_decimal("llm_cost_usd_total", **LABELS, cost_type="output") == total
    assert f"{float(total)!r}" in store.render().decode()
