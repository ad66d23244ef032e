"""A real Prometheus 2.42 scrapes both exposition formats and stores exactly the store's values."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics, content_type, negotiate
from genai_meter.records import Cost, LLMCall, TokenCounts

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def filled_store() -> UsageMetrics:
    config = Config(budgets=[{"name": "org", "limit_usd": "5000"},
                             {"name": "acme", "match": {"customer": "acme"}, "period": "day",
                              "limit_tokens": 2_000_000}])
    store = UsageMetrics(config, catalog_version="0.2.3")
    now = time.time_ns()
    for i in range(40):
        call = LLMCall(service="checkout", environment="prod", provider=["openai", "anthropic"][i % 2],
                       model=["gpt-4o", "claude-sonnet-4"][i % 2], operation="chat",
                       status="error" if i % 9 == 0 else "ok", error_type="", duration_s=0.3 * i,
                       ttft_s=0.02 * i, tokens=TokenCounts(input=100 + i, cache_read=10, output=20 + i),
                       end_ns=now, dimensions={"customer": ["acme", 'q"uote\\d', "globex"][i % 3]})
        cost = Cost(by_type={"input": Decimal("0.0000025") * (100 + i), "output": Decimal("0.00001") * (20 + i)},
                    price_source="overrides", price_version="t", price_entry="e",
                    unit_prices={"input": Decimal("2.5"), "output": Decimal("10")})
        store.record_call(call, cost if i % 5 else None)
    return store


@pytest.fixture
def served() -> Iterator[tuple[UsageMetrics, str, list[str]]]:
    store = filled_store()
    accepts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            accept = self.headers.get("Accept", "")
            accepts.append(f"{self.path} {accept}")
            openmetrics = negotiate(accept) if self.path == "/metrics" else False
            body = store.render(openmetrics)
            self.send_response(200)
            self.send_header("Content-Type", content_type(openmetrics))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield store, f"127.0.0.1:{server.server_address[1]}", accepts
    server.shutdown()
    server.server_close()


def query(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        answer = json.load(response)
    assert answer["status"] == "success", (promql, answer)
    return answer["data"]["result"]


def promql_blocks() -> list[str]:
    doc = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
    return [block.strip() for block in re.findall(r"```promql\n(.*?)```", doc.read_text(), re.S)]


def test_prometheus_scrapes_openmetrics_and_classic_exactly(served: tuple[UsageMetrics, str, list[str]],
                                                            tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed (Debian package `prometheus`)")
    store, target, accepts = served
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        f"  - {{job_name: om, metrics_path: /metrics, static_configs: [{{targets: ['{target}']}}]}}\n"
        f"  - {{job_name: classic, metrics_path: /classic, static_configs: [{{targets: ['{target}']}}]}}\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}",
                             f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--config.file={tmp_path / 'prometheus.yml'}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Prometheus drops empty label values (an absent dimension): compare without them
        expected = {(name, frozenset((k, v) for k, v in labels if v)): value
                    for (name, labels), value in store.samples().items()}
        deadline = time.monotonic() + 30
        got: dict[str, dict] = {}
        while time.monotonic() < deadline:
            time.sleep(1)
            try:
                up = {r["metric"]["job"]: r["value"][1] for r in query(base, "up")}
                if up != {"om": "1", "classic": "1"}:
                    continue
                for job in ("om", "classic"):
                    got[job] = {
                        (r["metric"]["__name__"],
                         frozenset((k, v) for k, v in r["metric"].items()
                                   if k not in ("__name__", "job", "instance"))): float(r["value"][1])
                        for r in query(base, f'{{job="{job}",__name__=~"llm_.+|genai_meter_.+"}}')
                    }
                if all(len(got[job]) == len(expected) for job in got):
                    break
            except OSError:
                continue
        assert got.get("om") == expected
        assert got.get("classic") == expected
        scraped = {r["metric"]["job"]: float(r["value"][1]) for r in query(base, "scrape_samples_scraped")}
        assert scraped == {"om": len(expected), "classic": len(expected)}  # no _created, nothing extra
        assert any(a.startswith("/metrics application/openmetrics-text") for a in accepts)
        # every PromQL example of docs/metrics.md evaluates on real data without an error
        for expr in promql_blocks():
            query(base, expr)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
