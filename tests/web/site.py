"""A real report service with the page, on 127.0.0.1, over a real SQLite ledger of known calls.

Calls are real `LLMCall`s priced by the real `PriceBook` and written by the real ledger writer; `Known`
holds the exact sums computed here from the same costs. The server is waitress in a thread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from waitress.server import create_server

from genai_meter.config import Config, load_config
from genai_meter.ledger import Entry, open_reader
from genai_meter.money import to_pico, usd_text
from genai_meter.pricing import PriceBook
from genai_meter.records import LLMCall, TokenCounts
from genai_meter.reports.service.app import create_app
from genai_meter.reports.service.readers import PerThreadReader
from genai_meter.reports.service.scopes import token_hash
from genai_meter.stack.budget import demo_budget
from genai_meter.stack.traffic import MODELS as PROFILES
from tests.support.ledger_entries import store_entries

ADMIN_TOKEN = "web-admin-token"
ACME_TOKEN = "web-acme-token"
NS = 10**9
MODELS = (("openai", "gpt-4o", "chat"), ("openai", "gpt-4o-mini", "chat"),
          ("anthropic", "claude-sonnet-4-5", "chat"), ("openai", "text-embedding-3-small", "embeddings"))
IDLE_MODEL = "gpt-4.1-mini"
IDLE_WEEKS_MODEL = "gpt-4.1-nano"  # last used 20 days ago
ORGS = ("acme", "globex")
CUSTOMERS = ("cust-alpha", "cust-beta", "cust-gamma")
FEATURES = ("search", "chat", "summarize")


@dataclass
class Known:
    """Exact expected sums (pico-USD and tokens), overall and per organization."""

    calls: int = 0
    errors: int = 0
    tokens: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_pico: int = 0
    by_org: dict[str, dict[str, int]] = field(default_factory=dict)
    conversations: dict[str, list[tuple[LLMCall, int]]] = field(default_factory=dict)

    @property
    def cost_usd(self) -> str:
        return usd_text(self.cost_pico)

    def add(self, call: LLMCall, pico: int) -> None:
        t = call.tokens.as_dict()
        self.calls += 1
        self.errors += call.status == "error"
        self.tokens += sum(t.values())
        self.tokens_in += t["input"] + t["cache_read"] + t["cache_write"]
        self.tokens_out += t["output"] + t["reasoning"]
        self.cost_pico += pico
        org = self.by_org.setdefault(call.dimensions["organization"], {"calls": 0, "cost_pico": 0})
        org["calls"] += 1
        org["cost_pico"] += pico
        if call.conversation_id:
            self.conversations.setdefault(call.conversation_id, []).append((call, pico))


def make_config(tmp: Path) -> Config:
    data = {
        "dimensions": {"customer": {"attributes": ["customer.id"]}, "feature": {"attributes": ["feature.id"]},
                       "organization": {"attributes": ["organization.id"]}},
        "ledger": {"url": f"sqlite:///{tmp / 'ledger.db'}", "hash_user_ids": False},
        "budgets": [{"name": "all-monthly", "period": "month", "limit_usd": "40"},
                    {"name": "acme-monthly", "match": {"organization": "acme"}, "period": "month",
                     "limit_usd": "0.000001"},
                    {"name": "globex-monthly", "match": {"organization": "globex"}, "period": "month",
                     "limit_usd": "100"}],
        "reports": {"tokens": [{"sha256": token_hash(ADMIN_TOKEN), "admin": True, "name": "ops"},
                               {"sha256": token_hash(ACME_TOKEN), "scope": {"organization": ["acme"]},
                                "name": "acme"}],
                    "advice": {"min_saving_usd": "0.01"}},  # a few dollars of traffic: list its savings
    }
    path = tmp / "genai-meter.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def make_call(i: int, end_ns: int, rng: random.Random, *, conversation: str = "", org: str = "") -> LLMCall:
    provider, model, op = MODELS[i % len(MODELS)]
    if op == "embeddings":
        tokens = TokenCounts(input=rng.randrange(100, 3000))
    else:
        tokens = TokenCounts(input=rng.randrange(50, 3000), cache_read=rng.choice([0, rng.randrange(1, 1500)]),
                             cache_write=rng.randrange(0, 300) if provider == "anthropic" else 0,
                             output=rng.randrange(10, 1200), reasoning=rng.choice([0, rng.randrange(1, 200)]))
    ident = hashlib.sha256(f"web-{i}-{end_ns}".encode()).digest()
    return LLMCall(
        service=("web", "worker", "api")[i % 3], environment="prod", provider=provider, model=model, operation=op,
        status="error" if i % 13 == 0 else "ok", error_type="timeout" if i % 13 == 0 else "",
        duration_s=round(rng.uniform(0.2, 6.0), 3), ttft_s=None, tokens=tokens, end_ns=end_ns,
        dimensions={"customer": CUSTOMERS[i % 3], "feature": FEATURES[(i // 3) % 3],
                    "organization": org or ORGS[(i // 2) % 2]},
        request_model=model, trace_id=ident[:16], span_id=ident[16:24], conversation_id=conversation,
        user_id=f"user-{i % 4}")


def build_calls(now_ns: int, n: int = 240, seed: int = 11) -> list[LLMCall]:
    """`n` calls over the 6 days before `now_ns` (inside range=7d) plus one 4-turn conversation per org."""
    rng = random.Random(seed)
    calls = [make_call(i, now_ns - rng.randrange(60, 6 * 86400) * NS - rng.randrange(NS), rng) for i in range(n)]
    for c, org in enumerate(ORGS):
        start = now_ns - (3600 + c * 600) * NS
        calls += [make_call(1000 + 10 * c + turn, start + turn * 45 * NS, rng, conversation=f"conv-{org}",
                            org=org) for turn in range(4)]
    calls += [make_call(3000 + c, now_ns - (20 + c) * NS, rng, org=org) for c, org in enumerate(ORGS)]  # this period
    old = make_call(2000, now_ns - 30 * 3600 * NS, rng)  # used 30 h ago only: zero requests in range=24h
    calls.append(dataclasses.replace(old, model=IDLE_MODEL, request_model=IDLE_MODEL))
    return calls


def write_calls(config: Config, calls: list[LLMCall], known: Known | None = None) -> Known:
    """Price `calls` with the real price book and store them through the real writer."""
    book = PriceBook.from_config(config)
    known = known if known is not None else Known()
    entries = []
    for call in calls:
        cost = book.cost(call)
        assert cost is not None, f"{call.provider}/{call.model} must be priced for exact totals"
        entries.append(Entry(call, cost))
        known.add(call, sum(to_pico(v) for v in cost.by_type.values()))
    store_entries(config, entries)
    return known


class Site:
    """The report service (API + page) served by waitress on 127.0.0.1 in a thread."""

    def __init__(self, config: Config) -> None:
        assert config.ledger.url is not None
        self.config = config
        url = config.ledger.url
        self.reader = PerThreadReader(lambda: open_reader(url, config))  # one reader per thread, as served
        app = create_app(config, self.reader, ledger_url=config.ledger.url)
        self.server = create_server(app, host="127.0.0.1", port=0, threads=config.reports.worker_threads,
                                    ident="genai-meter-test")
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)

    def _run(self) -> None:
        try:
            self.server.run()
        except (OSError, ValueError):  # the select loop sees its sockets closed by close()
            if not self.closing.is_set():
                raise

    def close(self) -> None:
        self.closing.set()
        self.server.close()
        self.thread.join(timeout=10)
        self.reader.close()


DEMO_RATE = 10.0  # calls per second, as `genai-meter demo` sends them
DEMO_LIVE_S = 60  # seconds of live traffic before the page is opened: the budget is a quarter used


def demo_config(tmp: Path) -> Config:
    """The web config with the demo's own budget instead of the test budgets (stack.budget.demo_budget:
    a day budget on the live services that the demo's traffic fills in 4 minutes, noon offset)."""
    base = make_config(tmp)
    return base.model_copy(update={"budgets": [demo_budget(base, DEMO_RATE)]})


def demo_calls(now_ns: int) -> list[LLMCall]:
    """The demo's live traffic of the last DEMO_LIVE_S seconds: its models in turn (the self-hosted one has no
    price), its live services, one call in ten of the priced ones without cache token counts (an upper bound),
    and a chat conversation that includes the unpriced model."""
    calls = []
    count = int(DEMO_RATE * DEMO_LIVE_S)
    for i in range(count):
        profile = PROFILES[i % len(PROFILES)]
        cached = int(profile.prompt_tokens * profile.cache_share)
        reasoning = int(profile.completion_tokens * profile.reasoning_share)
        end_ns = now_ns - DEMO_LIVE_S * NS + (i * NS) // int(DEMO_RATE) + NS // 20
        ident = hashlib.sha256(f"demo-{i}-{end_ns}".encode()).digest()
        unmetered = "cache_unknown" if i % 10 == 3 and profile.provider != "self-hosted" else ""
        calls.append(LLMCall(
            service=("support-bot", "search-api")[i % 2], environment="prod", provider=profile.provider,
            model=profile.response_model, operation="chat", status="ok", error_type="", duration_s=1.25,
            ttft_s=None, tokens=TokenCounts(input=profile.prompt_tokens - cached, cache_read=cached,
                                            output=profile.completion_tokens - reasoning, reasoning=reasoning),
            end_ns=end_ns, dimensions={"customer": CUSTOMERS[i % 3], "feature": FEATURES[i % 3],
                                       "organization": ORGS[i % 2]},
            request_model=profile.model, trace_id=ident[:16], span_id=ident[16:24], unmetered=unmetered,
            conversation_id="demo-chat-1" if i >= count - 5 else "", user_id=f"user-{i % 4}"))
    return calls


def write_any(config: Config, calls: list[LLMCall]) -> None:
    """Price `calls` (unpriced ones stored as such) and store them through the real writer."""
    book = PriceBook.from_config(config)
    store_entries(config, [Entry(c, book.cost(c)) for c in calls])
