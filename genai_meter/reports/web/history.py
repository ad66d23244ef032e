"""Synthetic usage history for the demo: ~`days` of calls so the page's charts, forecasts and budgets
have something to show at once.

`synthetic_history(config, days, now_ns, seed)` is deterministic (same arguments, same entries) and does
no I/O besides pricing with the config's price book. Every call is clearly marked synthetic: its
service name starts with `synthetic-` and its environment is `synthetic`. The history has
organizations, customers, users, features, a few models, conversations of several turns, a daily
rhythm, weekly seasonality (quiet weekends), a slow upward trend and ~2 % errors.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

from genai_meter.config import Config
from genai_meter.ledger.model import Entry
from genai_meter.pricing import PriceBook
from genai_meter.records import LLMCall, TokenCounts

NS = 10**9
SYNTHETIC_ENVIRONMENT = "synthetic"
SERVICES = ("synthetic-web", "synthetic-worker")
ORGANIZATIONS: dict[str, tuple[str, ...]] = {
    "acme": ("acme-retail", "acme-bank", "acme-travel"),
    "globex": ("globex-eu", "globex-us"),
    "initech": ("initech-support",),
}
PROJECTS = {"acme": "acme-assistant", "globex": "globex-search", "initech": "initech-helpdesk"}
# feature -> (provider, model, operation, weight)
FEATURES: dict[str, tuple[tuple[str, str, str, int], ...]] = {
    "chat": (("openai", "gpt-4o", "chat", 5), ("anthropic", "claude-sonnet-4-5", "chat", 3),
             ("openai", "gpt-4o-mini", "chat", 4)),
    "search": (("openai", "text-embedding-3-small", "embeddings", 6), ("openai", "gpt-4o-mini", "chat", 3)),
    "summarize": (("anthropic", "claude-sonnet-4-5", "chat", 2), ("openai", "gpt-4.1-mini", "chat", 3)),
}
FEATURE_WEIGHTS = {"chat": 5, "search": 4, "summarize": 2}
HOURLY = [0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.4, 0.7, 1.0, 1.2, 1.3, 1.3, 1.1, 1.2, 1.35, 1.4, 1.3, 1.1, 0.9, 0.7,
          0.55, 0.45, 0.3, 0.2]  # relative traffic by hour of day (UTC)
WEEKLY = [1.0, 1.05, 1.1, 1.05, 0.95, 0.4, 0.3]  # Monday .. Sunday


@dataclass(frozen=True, slots=True)
class _Who:
    organization: str
    customer: str
    user: str


def _people(rng: random.Random) -> list[_Who]:
    people = []
    for org, customers in ORGANIZATIONS.items():
        for customer in customers:
            for n in range(rng.randint(2, 4)):
                people.append(_Who(org, customer, f"{customer}-user-{n + 1}"))
    return people


def _tokens(rng: random.Random, operation: str, provider: str, context: int) -> TokenCounts:
    if operation == "embeddings":
        return TokenCounts(input=rng.randint(200, 4000))
    cached = int(context * rng.uniform(0.3, 0.8)) if context else 0
    return TokenCounts(input=rng.randint(150, 2500) + context - cached, cache_read=cached,
                       cache_write=rng.randint(0, 400) if provider == "anthropic" and not context else 0,
                       output=rng.randint(40, 900), reasoning=rng.choice((0, 0, 0, rng.randint(20, 300))))


def _call(rng: random.Random, who: _Who, feature: str, model: tuple[str, str, str, int], end_ns: int,
          conversation: str, context: int, dimensions: set[str]) -> LLMCall:
    provider, name, operation, _ = model
    ident = hashlib.sha256(f"{end_ns}:{rng.random()}".encode()).digest()
    failed = rng.random() < 0.02
    speed = {"gpt-4o": 1.0, "claude-sonnet-4-5": 1.3, "gpt-4o-mini": 0.5, "gpt-4.1-mini": 0.6}.get(name, 0.15)
    dims = {"organization": who.organization, "customer": who.customer, "feature": feature,
            "project": PROJECTS[who.organization], "user": who.user}
    return LLMCall(
        service=SERVICES[0] if feature != "search" else SERVICES[1], environment=SYNTHETIC_ENVIRONMENT,
        provider=provider, model=name, operation=operation, status="error" if failed else "ok",
        error_type="rate_limit" if failed else "", duration_s=round(speed * rng.uniform(0.6, 4.0), 3),
        ttft_s=None, tokens=_tokens(rng, operation, provider, context), end_ns=end_ns,
        dimensions={k: v for k, v in dims.items() if k in dimensions}, source="synthetic", request_model=name,
        trace_id=ident[:16], span_id=ident[16:24], conversation_id=conversation, user_id=who.user)


def synthetic_history(config: Config, days: int, now_ns: int, seed: int = 1) -> list[Entry]:
    """Priced synthetic calls over the `days` days before `now_ns`, oldest first (~250 calls a weekday)."""
    if days < 1:
        return []
    rng = random.Random(seed)
    book = PriceBook.from_config(config)
    dimensions = set(config.active_dimensions)
    people = _people(rng)
    start_ns = now_ns - days * 86400 * NS
    first_day = start_ns // (86400 * NS)
    calls: list[LLMCall] = []
    for day in range(first_day, now_ns // (86400 * NS) + 1):
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
        growth = 1 + 0.5 * (day - first_day) / max(days, 1)
        for hour in range(24):
            hour_ns = (day * 24 + hour) * 3600 * NS
            if hour_ns + 3600 * NS <= start_ns or hour_ns >= now_ns:
                continue
            mean = 10.5 * HOURLY[hour] * WEEKLY[weekday] * growth
            sessions = max(0, round(rng.gauss(mean, math.sqrt(mean) + 0.5)))
            for _ in range(sessions):
                who = rng.choice(people)
                feature = rng.choices(list(FEATURE_WEIGHTS), weights=list(FEATURE_WEIGHTS.values()))[0]
                options = FEATURES[feature]
                model = rng.choices(options, weights=[m[3] for m in options])[0]
                at = hour_ns + rng.randrange(3600 * NS)
                turns = rng.randint(2, 6) if feature == "chat" else 1
                conversation = f"synthetic-{hashlib.sha1(f'{seed}:{at}'.encode()).hexdigest()[:12]}" \
                    if turns > 1 else ""
                context = 0
                for _turn in range(turns):
                    if start_ns <= at < now_ns:
                        call = _call(rng, who, feature, model, at, conversation, context, dimensions)
                        calls.append(call)
                        context += call.tokens.input + call.tokens.cache_read + call.tokens.output
                    at += rng.randint(20, 120) * NS
    calls.sort(key=lambda c: c.end_ns)
    return [Entry(call, book.cost(call)) for call in calls]
