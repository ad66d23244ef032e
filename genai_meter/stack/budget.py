"""The demo's budget: sized from its own traffic so that thresholds are crossed in minutes.

A fixed budget ($25 a day) took ~45 minutes at the demo's rate and, being a calendar day, depended
on the time of day. Here the limit is what the synthetic traffic spends in `DEMO_BUDGET_MINUTES`
(priced with the same price book as `serve`), the thresholds are 25/50/75/100 %, and the day's
UTC offset puts the demo in the middle of its budget day, whatever the hour. The budget matches the
demo's live services only, so the synthetic history in the demo's ledger (services `synthetic-*`)
does not count on the web page's budget view.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal

from genai_meter.config import BudgetConfig, Config
from genai_meter.pricing import PriceBook
from genai_meter.records import TokenCounts
from genai_meter.stack.traffic import FAILURE_SHARE, MODELS, SERVICES

BUDGET_NAME = "demo-daily"
DEMO_BUDGET_MINUTES = 4  # the traffic reaches 100 % after this long: 25 % after a minute
THRESHOLDS = [25, 50, 75, 100]
CENT = Decimal("0.01")
LIVE_SERVICES = "~" + "|".join(sorted({name for name, _environment in SERVICES}))  # plain names: no escaping


def spend_per_call(book: PriceBook, at: datetime) -> Decimal:
    """The mean cost of one synthetic call (models chosen uniformly, typical sizes, failures free)."""
    total = Decimal(0)
    for profile in MODELS:
        cached = int(profile.prompt_tokens * profile.cache_share)
        reasoning = int(profile.completion_tokens * profile.reasoning_share)
        tokens = TokenCounts(profile.prompt_tokens - cached, cached, 0, profile.completion_tokens - reasoning,
                             reasoning)
        cost = book.price(profile.provider, profile.response_model, tokens, at)
        if cost is not None:
            total += cost.total
    return total / len(MODELS) * (1 - Decimal(str(FAILURE_SHARE)))


def noon_offset(now: datetime) -> str:
    """The UTC offset ("+HH:MM") at which `now` is about noon: the budget day has hours to go."""
    hours = 12 - now.astimezone(UTC).hour  # -11 .. +12
    return f"{'+' if hours >= 0 else '-'}{abs(hours):02d}:00"


def demo_budget(config: Config, rate: float, now: datetime | None = None) -> BudgetConfig:
    """A daily budget that the demo's traffic at `rate` calls/s fills in DEMO_BUDGET_MINUTES."""
    now = now or datetime.now(UTC)
    book = PriceBook.from_config(config)
    try:
        per_second = spend_per_call(book, now) * Decimal(str(rate))
    finally:
        book.close()
    limit = (per_second * 60 * DEMO_BUDGET_MINUTES).quantize(CENT, rounding=ROUND_CEILING)
    return BudgetConfig(name=BUDGET_NAME, match={"service_name": LIVE_SERVICES}, period="day",
                        utc_offset=noon_offset(now),
                        limit_usd=max(limit, CENT), thresholds=THRESHOLDS)


def with_demo_budget(config: Config, rate: float) -> Config:
    """The user's config, plus the demo budget when it has none of its own."""
    if config.budgets:
        return config
    return config.model_copy(update={"budgets": [demo_budget(config, rate)]})
