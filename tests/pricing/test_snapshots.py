"""Keeping prices current: `genai-meter prices update` stores a genai-prices data snapshot as the newest
price version, `PriceBook.from_config` prices with it, `prices status` says so, `ledger reprice` uses it."""

from __future__ import annotations

import copy
import hashlib
import http.server
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import genai_prices
import pytest
from genai_prices.data import providers as pinned_providers

from genai_meter import contract
from genai_meter.cli import main
from genai_meter.collector_processor.metering import build_meter
from genai_meter.config import Config, ConfigError, data_dir
from genai_meter.exporters import UsageMetrics
from genai_meter.ledger import open_writer, reprice
from genai_meter.ledger.model import Entry
from genai_meter.pricing import PriceBook
from genai_meter.pricing.book import to_ns
from genai_meter.pricing.catalog import PINNED_DATA_DATES, newest_effective_date
from genai_meter.pricing.snapshots import newest, stored_source, versions
from genai_meter.records import LLMCall, TokenCounts
from tests.pricing.snapshot_data import snapshot_bytes

SMALL = Path(__file__).resolve().parents[1] / "fixtures" / "prices" / "snapshot-small.json"
AT = datetime(2026, 11, 20, 12, tzinfo=UTC)
D = Decimal


def tokens(input: int = 0, output: int = 0) -> TokenCounts:
    return TokenCounts(input=input, output=output)


def update(*args: str) -> int:
    return main(["prices", "update", *args])


def test_update_stores_a_version_that_prices_from_then_on(capsys: pytest.CaptureFixture[str]) -> None:
    before = PriceBook.from_config(Config())
    assert before.catalog_version == genai_prices.__version__
    assert before.price("openai", "gpt-4o", tokens(1_000_000), AT).total == D("2.5")  # type: ignore[union-attr]

    assert update("--file", str(SMALL)) == 0
    out = capsys.readouterr().out
    assert "stored price version" in out and "2 providers, 3 models" in out
    stored = newest(Config())
    assert stored is not None
    assert stored.sha256 == hashlib.sha256(SMALL.read_bytes()).hexdigest()
    assert stored.source == str(SMALL)
    assert stored.path.parent == data_dir(Config()) / "prices" and stored.path.read_bytes() == SMALL.read_bytes()
    assert stored.version.startswith(f"{genai_prices.__version__}+data.") and stored.version.endswith(stored.sha256[:8])

    book = PriceBook.from_config(Config())
    assert book.catalog_version == stored.version and book.catalog_date == stored.stored_at.date()
    cost = book.price("openai", "gpt-4o", tokens(1_000_000, 1_000_000), AT, units={"web_searches": 2})
    assert cost is not None and cost.price_version == stored.version
    assert cost.by_type["input"] == D("2") and cost.by_type["output"] == D("8")  # the snapshot's prices
    assert cost.unit_pico == {"web_searches": 50_000_000_000}  # 2 x $25/K
    flex = book.price("openai", "gpt-4o", tokens(1_000_000), AT, service_tier="flex")
    assert flex is not None and flex.total == D("1") and flex.unpriced_units == ()
    batch = book.price("openai", "gpt-4o", tokens(1_000_000), AT, batch=True)
    assert batch is not None and batch.total == D("1.1")
    audio = book.price("openai", "gpt-audio-2", tokens(), AT, units={"input_audio_tokens": 1_000_000})
    assert audio is not None and audio.total == D("30") and audio.price_entry == "openai/gpt-audio-2@2026-11-01"
    assert book.price("openai", "gpt-5-mini", tokens(1), AT) is None  # not in this snapshot

    assert update("--file", str(SMALL)) == 0  # the same data again: not stored twice
    assert "unchanged" in capsys.readouterr().out
    assert len(versions(Config())) == 1


def test_the_whole_pinned_catalog_round_trips_through_a_snapshot() -> None:
    """The pinned data written in the published format, stored, and read back: every model prices the same."""
    data = snapshot_bytes(pinned_providers)
    assert update_bytes(data) == 0
    stored_book = PriceBook.from_config(Config())
    pinned_book = PriceBook()
    assert stored_book.catalog_version != pinned_book.catalog_version
    counts = TokenCounts(input=123_456, cache_read=7_890, cache_write=1_234, output=5_678, reasoning=910)
    units = {"input_audio_tokens": 1_111, "web_searches": 3, "audio_seconds": 65}
    checked = 0
    for provider in pinned_providers:
        for model in provider.models:
            for tier, batch in (("", False), ("flex", False), ("priority", True)):
                a = stored_book.price(provider.id, model.id, counts, AT, service_tier=tier, batch=batch, units=units)
                b = pinned_book.price(provider.id, model.id, counts, AT, service_tier=tier, batch=batch, units=units)
                assert (a is None) == (b is None)
                if a is not None and b is not None:
                    assert (a.total, a.unpriced_units) == (b.total, b.unpriced_units), (provider.id, model.id)
                    checked += 1
    assert checked > 3_000


def update_bytes(data: bytes, name: str = "data.json") -> int:
    path = data_dir(Config()) / ".." / name
    path.write_bytes(data)
    return update("--file", str(path))


def test_the_newest_stored_version_wins_and_status_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["in_use"]["origin"] == "package" and status["in_use"]["version"] == genai_prices.__version__
    assert status["in_use"]["date"] == "2026-12-01" and status["stored"] == []

    assert update("--file", str(SMALL)) == 0
    changed = copy.deepcopy(json.loads(SMALL.read_text()))
    changed[0]["models"][0]["prices"]["input_mtok"] = 1.5
    assert update_bytes(json.dumps(changed).encode(), "newer.json") == 0
    capsys.readouterr()
    stored = versions(Config())
    assert len(stored) == 2 and newest(Config()) == stored[-1]
    cost = PriceBook.from_config(Config()).price("openai", "gpt-4o", tokens(1_000_000), AT)
    assert cost is not None and cost.total == D("1.5")

    assert main(["prices", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["in_use"]["origin"] == "stored" and status["in_use"]["version"] == stored[-1].version
    assert status["in_use"]["source"].endswith("newer.json") and status["in_use"]["age_days"] == 0
    assert [v["version"] for v in status["stored"]] == [v.version for v in stored]
    assert status["stale"] is False
    assert main(["prices", "status"]) == 0
    text = capsys.readouterr().out
    assert f"prices in use: stored snapshot, catalog version {stored[-1].version}" in text


def test_status_says_when_the_catalog_is_stale(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "genai-meter.yaml"
    config.write_text("pricing:\n  stale_after_days: 1\n")
    assert main(["prices", "status", "--json", "--config", str(config)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["stale"] is (status["in_use"]["age_days"] > 1)


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "not a genai-prices data snapshot: not JSON"),
    (b'{"id": "openai"}', "the top level must be a list of providers, got dict"),
    (b'[{"id": "x", "name": "X", "api_pattern": "x", "models": [{"match": {"equals": "m"}, "prices": {}}]}]',
     "not a genai-prices data snapshot: 0.models.0.id: Field required"),
    (b'[{"id": "x", "name": "X", "api_pattern": "x", "models": [{"id": "m", "match": {"equals": "m"}, '
     b'"prices": {"input_mtok": 1, "hologram_mtok": 2}}]}]', "provider 'x' model 'm': Unknown price key: hologram_mtok"),
    (b'[{"id": "x", "name": "X", "api_pattern": "x", "models": [{"id": "m", "match": {"equals": "m"}, '
     b'"prices": {"input_mtok": 1, "cache_read_mtok": 1, "input_audio_mtok": 2}}]}]',
     "Missing join price for cache_read_tokens and input_audio_tokens: cache_audio_read_tokens"),
    (b'[{"id": "x", "name": "X", "api_pattern": "x", "models": []}]', "no priced model in it"),
    (b"\xff\xfe", "not UTF-8 text"),
])
def test_invalid_snapshots_are_refused(capsys: pytest.CaptureFixture[str], content: bytes, message: str) -> None:
    code = update_bytes(content, "bad.json")
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "bad.json" in err and len(err.strip().splitlines()) == 1
    assert versions(Config()) == []  # nothing stored
    assert PriceBook.from_config(Config()).catalog_version == genai_prices.__version__


def test_a_tampered_stored_version_is_an_error_not_other_prices() -> None:
    assert update("--file", str(SMALL)) == 0
    stored = newest(Config())
    assert stored is not None
    stored.path.write_bytes(stored.path.read_bytes().replace(b'"input_mtok": 2,', b'"input_mtok": 0,'))
    with pytest.raises(ConfigError, match="its bytes do not match the sha256 stored with it"):
        stored_source(Config())
    assert main(["price", "openai", "gpt-4o", "--input", "1"]) == 2


@pytest.fixture
def snapshot_server() -> Iterator[str]:
    """A loopback HTTP server serving the small snapshot at /data.json (404 elsewhere)."""
    body = SMALL.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/data.json":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_update_from_a_url(snapshot_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert update("--url", f"{snapshot_server}/data.json", "--json") == 0
    stored = json.loads(capsys.readouterr().out)
    assert stored["stored"] is True and stored["source"] == f"{snapshot_server}/data.json"
    assert stored["sha256"] == hashlib.sha256(SMALL.read_bytes()).hexdigest()
    assert update("--url", f"{snapshot_server}/missing.json") == 2
    assert "cannot fetch the price snapshot" in capsys.readouterr().err
    assert update("--url", "ftp://example.invalid/data.json") == 2


def test_ledger_reprice_prices_with_the_updated_catalog(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    config = Config()
    old = PriceBook.from_config(config)
    calls = [LLMCall(service="svc", environment="prod", provider="openai", model="gpt-4o", operation="chat",
                     status="ok", error_type="", duration_s=1.0, ttft_s=None, tokens=tokens(1_000_000, 100_000),
                     end_ns=to_ns(AT) + i, trace_id=bytes([i + 1]) * 16, span_id=bytes([i + 1]) * 8)
             for i in range(3)]
    writer = open_writer(url, config)
    writer.submit([Entry(call, old.cost(call)) for call in calls]).result(10)
    writer.close()
    assert update("--file", str(SMALL)) == 0
    result = reprice(url, config, to_ns(AT), to_ns(AT) + 10, dry_run=False)
    # gpt-4o was $2.50 / $10 per Mtok (pinned), is $2 / $8 in the snapshot: 3.5 -> 2.8 USD per call
    assert result.changed == 3
    assert (result.old_total_pico, result.new_total_pico) == (3 * 3_500_000_000_000, 3 * 2_800_000_000_000)


def test_the_pinned_version_has_its_data_date() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    pin = re.search(r'"genai-prices==([^"]+)"', pyproject)
    assert pin is not None and pin.group(1) == genai_prices.__version__  # bump PINNED_DATA_DATES with the pin
    assert PINNED_DATA_DATES[genai_prices.__version__] == date(2026, 12, 1)
    assert newest_effective_date(pinned_providers, date(2026, 12, 7)) == date(2026, 12, 1)
    assert PriceBook().catalog_date == date(2026, 12, 1)


def test_the_meter_exports_the_catalog_date() -> None:
    metrics = UsageMetrics(Config())
    build_meter(Config(), [metrics])
    assert metrics.get(contract.SELF_PRICING_CATALOG_TIME) == 1_796_083_200  # 2026-12-01T00:00:00Z
    assert metrics.get(contract.SELF_PRICING_INFO, catalog_version=genai_prices.__version__, overrides_version="none",
                       catalog_date="2026-12-01") == 1
    assert update("--file", str(SMALL)) == 0
    stored = newest(Config())
    assert stored is not None
    metrics = UsageMetrics(Config())
    build_meter(Config(), [metrics])
    midnight = datetime(stored.stored_at.year, stored.stored_at.month, stored.stored_at.day, tzinfo=UTC)
    assert metrics.get(contract.SELF_PRICING_CATALOG_TIME) == midnight.timestamp()
    assert metrics.get(contract.SELF_PRICING_INFO, catalog_version=stored.version, overrides_version="none",
                       catalog_date=midnight.date().isoformat()) == 1
