"""`make demo` shows the product's web page (issue 11 item 8, issue 9 "the demo runs with the ledger"):
its URL comes first, its API answers from the demo's own ledger with ~30 days of synthetic history
plus the live calls (growing while the demo runs, with organizations, users and conversations of
several turns), the demo budget (live services only) crosses a threshold within 3 minutes while the
budgets page (headless Chromium) already names the minute it will cross 100 % and no 100 % alert has fired, alerts
reach the webhook, and the exit summary has the ledger's totals beside Prometheus's: every call sent
counted once in both. Real processes throughout (the demo, genai-meter serve and reports, Prometheus,
Alertmanager); one demo run, so that tests/stack stays well under 5 minutes."""

from __future__ import annotations

import re
import signal
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from genai_meter.stack.processes import port_free
from tests.stack.demo_process import Demo, alive, children_of, first_url, get_json
from tests.web.conftest import chromium_path


def _calls(page: str, query: str) -> int:
    summary = get_json(f"{page}api/v1/reports/summary?{query}")["summary"]
    assert isinstance(summary, dict)
    return int(summary["calls"])


def budget_page(page: str) -> str:
    """The demo budget's projection line as headless Chromium shows the budgets page (phone width)."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"])
        try:
            tab = browser.new_page(viewport={"width": 390, "height": 844})
            tab.goto(f"{page}budgets")
            tab.wait_for_selector("[data-budget=demo-daily][data-projection=will_exceed] canvas[data-points]",
                                  timeout=15000)
            return tab.inner_text("[data-budget=demo-daily] .projection")
        finally:
            browser.close()


@pytest.mark.slow
def test_the_demo_shows_the_page_with_history_live_calls_conversations_and_a_budget_crossing() -> None:
    demo = Demo()  # the defaults a newcomer gets from `make demo` (on free ports)
    try:
        assert demo.wait_for(r"demo running", 90), demo.text()
        assert demo.wait_for(r"Ctrl-C to stop", 5), demo.text()
        banner = demo.text()[demo.text().index("demo running"):]
        workdir = Path(re.search(r"files and logs in (\S+)\)", banner)[1])  # type: ignore[index]
        assert (workdir / "deploy/grafana/dashboards").is_dir() and (workdir / "ledger.db").is_file()
        page = f"http://127.0.0.1:{demo.ports['--reports-listen']}/"
        assert first_url(banner) == page, banner  # the page's URL first among the URLs
        written = re.search(r"(\d+) synthetic calls of history written", banner)
        assert written and int(written[1]) > 5000, banner
        with urllib.request.urlopen(page, timeout=5) as answer:  # the page itself
            assert answer.status == 200 and "text/html" in answer.headers["Content-Type"]
            assert "genai-meter" in answer.read().decode()

        # ~30 days of history, clearly marked synthetic, in the demo's own ledger
        coverage = get_json(f"{page}api/v1/reports/summary?range=30d&environment=synthetic")["coverage"]
        assert isinstance(coverage, dict)
        first = datetime.fromisoformat(str(coverage["first_call"]).replace("Z", "+00:00"))
        assert datetime.now(UTC) - first > timedelta(days=29), coverage
        assert _calls(page, "range=30d&environment=synthetic") == int(written[1])
        # live calls: the totals grow while the demo runs
        before = _calls(page, "range=1h")
        time.sleep(4)
        after = _calls(page, "range=1h")
        assert after > before + 10, (before, after)  # 10 calls/s
        services = get_json(f"{page}api/v1/dimensions/service/values?range=30d")["values"]
        assert isinstance(services, list)
        assert {"synthetic-web", "synthetic-worker", "support-bot", "search-api"} <= set(services), services

        # the budget: the live services only, so the history does not trip it at once ...
        budget = get_json(f"{page}api/v1/budgets")["budgets"][0]  # type: ignore[index]
        assert budget["name"] == "demo-daily" and budget["match"] == {"service_name": "~search-api|support-bot"}
        assert Decimal(budget["percent"]) < 25, budget
        # ... and its first threshold is crossed within 3 minutes, on the webhook and on the page
        alert = demo.wait_for(r"alert firing .*LLMBudget(ThresholdReached|Exceeded) demo-daily", 180)
        assert alert, demo.text()
        assert alert[0] - demo.started < 180 + 30, demo.text()  # 3 minutes of traffic, after start-up
        budget = get_json(f"{page}api/v1/budgets")["budgets"][0]  # type: ignore[index]
        assert Decimal(budget["percent"]) >= 25 and budget["state"] != "ok", budget
        # ... and before 100 % the page says when it will be crossed, while no 100 % alert has fired
        shown = budget_page(page)
        assert re.search(r"projected to cross 100 % at \d{4}-\d\d-\d\d \d\d:\d\d \(UTC[+-]\d\d:\d\d\)", shown), shown
        alerts = get_json(f"http://127.0.0.1:{demo.ports['--prometheus-listen']}/api/v1/alerts")["data"]
        firing = {a["labels"]["alertname"] for a in alerts["alerts"]  # type: ignore[index]
                  if a["state"] == "firing" and a["labels"].get("budget") == "demo-daily"}
        assert not firing & {"LLMBudgetExceeded", "LLMBudgetExhaustionForecast"}, firing

        # organizations, customers, users, features and conversations of several turns, live
        events = get_json(f"{page}api/v1/events?limit=200&environment=prod")["calls"]
        assert isinstance(events, list) and len(events) == 200
        assert {e["dimensions"]["organization"] for e in events} >= {"acme", "globex"}
        assert all(e["dimensions"]["customer"] and e["dimensions"]["feature"] and e["user"] for e in events)
        conversations = get_json(f"{page}api/v1/conversations?range=1h&limit=50")["conversations"]
        assert isinstance(conversations, list)
        live = [c for c in conversations if c["conversation"].startswith("demo-") and c["calls"] >= 2]
        assert live, conversations
        one = live[-1]  # the least recent: finished, no turn still on its way
        calls = get_json(f"{page}api/v1/conversations/{urllib.parse.quote(one['conversation'])}")["calls"]
        assert isinstance(calls, list) and len(calls) == one["calls"]
        assert len({c["dimensions"]["customer"] for c in calls}) == 1  # one customer talks in one conversation
        priced = [Decimal(c["cost_usd"]) for c in calls if c["cost_usd"] is not None]  # unpriced calls: null
        assert one["calls_unpriced"] == len(calls) - len(priced), (one, calls)
        assert (sum(priced) == Decimal(one["cost_usd"])) if priced else one["cost_usd"] is None, (one, calls)

        children = children_of(demo.process.pid)
        assert len(children) == 4, children
        demo.process.send_signal(signal.SIGINT)  # Ctrl-C
        assert demo.process.wait(20) == 0, demo.text()
        text = demo.text()
        summary = re.search(r"summary: (\d+) calls sent; Prometheus saw (\d+) requests, total cost \$([\d.]+), "
                            r"(\d+) unpriced\n  ledger: (\d+) live calls, total cost \$([\d.]+); "
                            r"(\d+) synthetic history calls", text)
        assert summary, text
        sent, seen, cost, unpriced = int(summary[1]), int(summary[2]), Decimal(summary[3]), int(summary[4])
        assert sent > 500 and seen == sent == int(summary[5]), text  # every call counted once, in both
        assert cost > 0 and abs(Decimal(summary[6]) - cost) <= Decimal("0.0001"), text
        assert 0 < unpriced < sent, text  # the self-hosted model has no price: flagged
        assert int(summary[7]) == int(written[1]), text
        # Prometheus -> Alertmanager -> the demo's webhook: the watchdog and the unpriced model too
        assert re.search(r"alert firing +\w+ +LLM(Watchdog|UnpricedModel)", text), text
        assert not workdir.exists()
        assert not [pid for pid in children if alive(pid)]
        assert all(port_free("127.0.0.1", port) for port in demo.ports.values()), demo.ports
    finally:
        demo.kill()
