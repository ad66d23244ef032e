"""A real SQLite ledger with known calls, and the report app over it (no fakes).

Calls are built as `LLMCall`s, priced with the real `PriceBook` (catalog + an override file with a
discount and a per-request fee), written with `open_writer`, and read with `open_reader`. `Known`
holds the exact sums computed here from the same rounded costs, for the assertions.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient

from genai_meter.config import Config, load_config
from genai_meter.ledger import Entry, open_reader, open_writer
from genai_meter.ledger.model import LedgerReader
from genai_meter.money import to_pico
from genai_meter.pricing import PriceBook
from genai_meter.pricing.catalog import Catalog
from genai_meter.records import LLMCall, TokenCounts
from genai_meter.reports.service.app import create_app
from genai_meter.reports.service.scopes import token_hash

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
NOW_NS = int(NOW.timestamp()) * 10**9
CLASSES = ("input", "cache_read", "cache_write", "output", "reasoning", "request")
ADMIN_TOKEN = "admin-secret-token"
ACME_TOKEN = "acme-only-token"
OVERRIDES = """
- provider: openai
  model: gpt-4o
  from: 2026-10-01
  discount_percent: 20
- provider: self-hosted
  model: llama-ft
  prices: {input_mtok: "0.20", output_mtok: "0.60", per_request: "0.0001"}
"""
MODELS = [("openai", "gpt-4o", "chat"), ("openai", "gpt-4o-mini", "chat"), ("anthropic", "claude-sonnet-4-5", "chat"),
          ("openai", "text-embedding-3-large", "embeddings"), ("self-hosted", "llama-ft", "chat"),
          ("openai", "mystery-model-x", "chat")]
ORGS = ("acme", "globex")
CUSTOMERS = ("c-1", "c-2", "c-3")
FEATURES = ("search", "chat", "summarize")


@dataclass
class Known:
    """Exact expected sums, keyed as the tests need them."""

    calls: int = 0
    errors: int = 0
    unpriced: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES[:5], 0))
    cost: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    by: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)  # (field, value) -> calls/cost/tokens
    calls_list: list[tuple[LLMCall, dict[str, int]]] = field(default_factory=list)

    @property
    def cost_total(self) -> int:
        return sum(self.cost.values())

    def add(self, call: LLMCall, pico: dict[str, int], unpriced: bool) -> None:
        self.calls += 1
        self.errors += call.status == "error"
        self.unpriced += unpriced
        for c, n in call.tokens.as_dict().items():
            self.tokens[c] += n
        for c, n in pico.items():
            self.cost[c] += n
        keys = {"provider": call.provider, "model": call.model, "service": call.service,
                **call.dimensions, "conversation": call.conversation_id}
        for name, value in keys.items():
            acc = self.by.setdefault((name, value), {"calls": 0, "cost": 0, "tokens": 0})
            acc["calls"] += 1
            acc["cost"] += sum(pico.values())
            acc["tokens"] += call.tokens.total
        self.calls_list.append((call, pico))


def make_config(tmp: Path, extra: dict[str, object] | None = None) -> Config:
    (tmp / "overrides.yaml").write_text(OVERRIDES)
    data: dict[str, object] = {
        "dimensions": {
            "customer": {"attributes": ["customer.id"]},
            "feature": {"attributes": ["feature.id"]},
            "organization": {"attributes": ["organization.id"]},
        },
        "pricing": {"overrides": "overrides.yaml"},
        "ledger": {"url": f"sqlite:///{tmp / 'ledger.db'}", "hash_user_ids": False},
        "budgets": [
            {"name": "all-monthly", "period": "month", "limit_usd": "50"},
            {"name": "acme-monthly", "match": {"organization": "acme"}, "period": "month", "limit_usd": "1"},
            {"name": "globex-daily-tokens", "match": {"organization": "globex"}, "period": "day",
             "limit_tokens": 1000000},
        ],
        "reports": {"tokens": [{"sha256": token_hash(ADMIN_TOKEN), "admin": True, "name": "ops"},
                               {"sha256": token_hash(ACME_TOKEN), "scope": {"organization": ["acme"]},
                                "name": "acme"}]},
    }
    data.update(extra or {})
    path = tmp / "genai-meter.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def build_calls(n_days: int = 20, per_day: int = 30, seed: int = 7) -> list[LLMCall]:
    """Deterministic calls spread over the days before NOW (and one conversation of several turns)."""
    rng = random.Random(seed)
    calls = []
    start = NOW_NS - n_days * 86400 * 10**9
    for i in range(n_days * per_day):
        provider, model, op = MODELS[i % len(MODELS)]
        end_ns = start + rng.randrange(n_days * 86400) * 10**9 + rng.randrange(10**9)
        if op == "embeddings":
            tokens = TokenCounts(input=rng.randrange(100, 5000))
        else:
            read = rng.choice([0, 0, rng.randrange(1, 3000)])
            tokens = TokenCounts(input=rng.randrange(10, 4000), cache_read=read,
                                 cache_write=rng.choice([0, rng.randrange(1, 500)]) if provider == "anthropic" else 0,
                                 output=rng.randrange(1, 2000), reasoning=rng.choice([0, rng.randrange(1, 300)]))
        conversation = f"conv-{i % 7}" if i % 3 == 0 else ""
        calls.append(LLMCall(
            service=rng.choice(["web", "worker"]), environment="prod", provider=provider, model=model, operation=op,
            status="error" if i % 17 == 0 else "ok", error_type="timeout" if i % 17 == 0 else "",
            duration_s=rng.uniform(0.1, 5), ttft_s=None, tokens=tokens, end_ns=end_ns,
            dimensions={"customer": CUSTOMERS[i % 3], "feature": FEATURES[i % 3 if i % 5 else 0],
                        "organization": ORGS[(i // 2) % 2]},
            request_model=model, trace_id=hashlib.md5(str(i).encode()).digest(),
            span_id=hashlib.md5(str(i).encode()).digest()[:8], conversation_id=conversation,
            user_id=f"user-{i % 5}"))
    return calls


def write_ledger(config: Config, calls: list[LLMCall]) -> Known:
    """Price and store `calls` through the real writer; the exact sums it must report."""
    book = PriceBook.from_config(config)
    catalog = PriceBook(Catalog())
    known = Known()
    entries = []
    for call in calls:
        cost = book.cost(call)
        catalog_cost = catalog.cost(call) if cost is not None and cost.price_source == "overrides" else None
        entries.append(Entry(call, cost, catalog_cost))
        pico = {c: to_pico(v) for c, v in cost.by_type.items()} if cost is not None else {}
        known.add(call, pico, cost is None)
    url = config.ledger.url
    assert url is not None
    writer = open_writer(url, config)
    try:
        for i in range(0, len(entries), 200):
            assert all(writer.submit(entries[i:i + 200]).result(timeout=30))
    finally:
        writer.close()
    return known


@contextmanager
def seeded_ledger(tmp: Path, calls: list[LLMCall]) -> Iterator[tuple[Config, Known, LedgerReader]]:
    """A ledger in `tmp` holding `calls` (priced by the real book), its config, exact sums and reader."""
    config = make_config(tmp)
    known = write_ledger(config, calls)
    assert config.ledger.url is not None
    reader = open_reader(config.ledger.url, config)
    try:
        yield config, known, reader
    finally:
        reader.close()


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, Known, LedgerReader]]:
    with seeded_ledger(tmp_path_factory.mktemp("ledger"), build_calls()) as seeded:
        yield seeded


@pytest.fixture(scope="module")
def app(ledger: tuple[Config, Known, LedgerReader]) -> Flask:
    config, _, reader = ledger
    return create_app(config, reader, clock=lambda: NOW_NS, ledger_url=config.ledger.url)


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def auth(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def start_service(config_path: Path, port: int) -> subprocess.Popen[str]:
    """`genai-meter reports` in its own process (the command's `run`, as the CLI calls it)."""
    root = Path(__file__).resolve().parents[2]
    code = ("import argparse, sys; from genai_meter.config import load_config; "
            "from genai_meter.reports.command import run; "
            f"sys.exit(run(argparse.Namespace(ledger=None, listen='127.0.0.1:{port}'), load_config(sys.argv[1])))")
    return subprocess.Popen([sys.executable, "-c", code, str(config_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})


def stop_service(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, wait (bounded), return the output."""
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out
