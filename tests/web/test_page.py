"""The web page in a real headless Chromium against the real report service over a real ledger.

Checks: exact totals on the cards, every chart has drawn data, the live feed shows a new call within
2 s, a conversation's page shows each message's cost, every download arrives with matching totals, a
scoped token sees no other organization, nothing is loaded from outside the machine, no console
errors, and phone width renders without horizontal overflow.
"""

from __future__ import annotations

import csv
import io
import json
import random
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from playwright.sync_api import Browser, Page
from pypdf import PdfReader

from genai_meter.money import usd_text
from genai_meter.reports.render.numbers import exact_money
from tests.web.conftest import Browse, Served, browse
from tests.web.site import ACME_TOKEN, IDLE_MODEL, IDLE_WEEKS_MODEL, make_call, write_calls

pytestmark = pytest.mark.slow
CHARTS = ("chart-cost-time", "chart-requests-time", "chart-model-tokens", "chart-model-cost", "chart-requests-model",
          "chart-token-class", "chart-period", "chart-latency-model", "chart-latency-operation")


def exact(pico: int) -> str:
    """The page's exact money text: $ and the 12-decimal figure without trailing zeros (2 decimals at least)."""
    whole, _, frac = usd_text(pico).partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"${whole}.{frac}"


def until(page: Page, expression: str, timeout_s: float = 15.0) -> None:
    """Poll a JS expression until true (the page's CSP forbids the eval that wait_for_function uses)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def wait_overview(page: Page) -> None:
    page.wait_for_selector("[data-card=cost]", timeout=15000)
    until(page, f"{list(CHARTS)!r}.every(id => document.getElementById(id).dataset.points !== undefined)"
                " && document.getElementById('heatmap').dataset.points !== undefined"
                " && document.querySelectorAll('[data-top] table').length === 3")


def test_overview_cards_show_exact_totals_and_every_chart_draws(admin: Browse, served: Served) -> None:
    page = admin.open("/?range=7d")
    wait_overview(page)
    known = served.known
    cost = page.inner_text("[data-card=cost]")
    assert f"exact {exact(known.cost_pico)}" in cost
    assert f"{known.calls:,}" in page.inner_text("[data-card=requests]")
    assert f"{known.calls - known.errors:,} / {known.errors:,}" in page.inner_text("[data-card=errors]")
    tokens = page.inner_text("[data-card=tokens]")
    assert f"{known.tokens:,}" in tokens and f"in {known.tokens_in:,}" in tokens and f"out {known.tokens_out:,}" in tokens
    assert f"exact {exact(known.cost_pico // known.calls)}" in page.inner_text("[data-card=per-request]")
    shown = page.evaluate("['0.250000000000', '0.123400000000', '12.345600000000', '1234.5', '0.000000000000']"
                          ".map(v => GM.usd(v))")
    assert shown == ["$0.25", "$0.1234", "$12.3456", "$1,234.50", "$0.00"]  # rounded, no zeros past the cents
    mtd = page.inner_text("[data-card=mtd]")
    assert "all-monthly" in mtd and "%" in mtd
    assert "range $" in page.inner_text("[data-card=projected]")
    for chart in CHARTS:
        points = page.get_attribute(f"#{chart}", "data-points")
        drawn = page.evaluate(f"Chart.getChart(document.getElementById('{chart}')).data.datasets"
                              ".some(d => d.data.some(v => v > 0))")
        assert points is not None and int(points) > 0 and drawn, f"{chart} has no drawn data"
    assert int(page.get_attribute("#heatmap", "data-points") or 0) > 0
    assert page.locator("#heatmap .hm-cell.on").count() > 0
    for top in ("customer", "feature", "user"):
        head = page.inner_text(f"[data-top={top}] thead")
        assert "Input tok." in head and "Output tok." in head and "Total tok." in head
        assert page.locator(f"[data-top={top}] tbody tr").count() >= 3


def test_requests_by_model_lists_zero_request_models_and_filters_stay_in_the_url(admin: Browse) -> None:
    page = admin.open("/?range=24h")
    wait_overview(page)
    labels = page.evaluate("Chart.getChart(document.getElementById('chart-requests-model')).data.labels")
    assert f"{IDLE_MODEL} (0)" in labels
    page = admin.open("/?range=7d")  # idle for 20 days: still listed at 0 over 7 days
    wait_overview(page)
    labels = page.evaluate("Chart.getChart(document.getElementById('chart-requests-model')).data.labels")
    assert f"{IDLE_WEEKS_MODEL} (0)" in labels and f"{IDLE_MODEL} (0)" not in labels
    assert "1 model with no request in this range" in page.inner_text("#idle-note")
    page = admin.open("/?range=24h")
    wait_overview(page)
    page.select_option("select[data-field=customer]", "cust-alpha")
    page.wait_for_url("**customer=cust-alpha**")
    wait_overview(page)
    assert "customer = cust-alpha" in page.inner_text("#chips")
    page.select_option("select[data-field=model]", "gpt-4o")
    page.wait_for_url("**model=gpt-4o**")
    assert "customer=cust-alpha" in page.url and "range=24h" in page.url
    wait_overview(page)
    shared = admin.open(page.url.removeprefix(admin.base))  # the same URL opened afresh shows the same view
    wait_overview(shared)
    assert "customer = cust-alpha" in shared.inner_text("#chips") and "model = gpt-4o" in shared.inner_text("#chips")
    custom = admin.open("/?range=7d")
    custom.click("[data-range=custom]")
    custom.fill("#range-from", "2020-01-01T00:00")
    custom.fill("#range-to", "2020-01-02T00:00")
    custom.click("#range-apply")
    custom.wait_for_url("**from=2020-01-0**")
    wait_overview(custom)
    assert "to=2020-01-0" in custom.url and "range=" not in custom.url
    assert custom.inner_text("[data-card=requests] .value") == "0"
    assert "active" in (custom.get_attribute("[data-range=custom]", "class") or "")


def test_feed_shows_a_new_call_within_two_seconds_filters_and_pages(admin: Browse, served: Served) -> None:
    page = admin.open("/activity?range=24h")
    page.wait_for_selector("#feed tbody tr[data-call]")
    assert page.locator("#feed tbody tr").count() == 25
    call = make_call(7, time.time_ns(), random.Random(1))
    call.dimensions["customer"] = "cust-live-test"
    written = time.monotonic()
    write_calls(served.site.config, [call], served.known)
    page.wait_for_selector("#feed tbody tr:has-text('cust-live-test')", timeout=5000)
    seen_after = time.monotonic() - written
    print(f"feed showed the new call after {seen_after:.2f} s")
    assert seen_after < 2.0, f"the feed showed the call after {seen_after:.2f} s"
    page.click("#older")
    until(page, "document.getElementById('page-info').textContent === 'page 2'")
    assert "cust-live-test" not in page.inner_text("#feed")
    filtered = admin.open("/activity?range=7d&customer=cust-beta")
    filtered.wait_for_selector("#feed tbody tr[data-call]")
    customers = filtered.eval_on_selector_all("#feed tbody tr", "rows => rows.map(r => r.cells[2].textContent)")
    assert customers and set(customers) == {"cust-beta"}


def test_conversation_page_shows_each_message_cost_arithmetic(admin: Browse, served: Served) -> None:
    page = admin.open("/conversations?range=7d")
    page.wait_for_selector("#conversations tbody tr")
    listed = page.inner_text("#conversations")
    assert "conv-acme" in listed and "conv-globex" in listed
    row = page.locator("#conversations tbody tr", has_text="conv-acme")
    started = row.locator("[data-key=first_call]").inner_text()
    ended = row.locator("[data-key=last_call]").inner_text()
    page.click("text=conv-acme")
    page.wait_for_selector("#messages .msg")
    calls = served.known.conversations["conv-acme"]
    messages = page.locator("#messages .msg")
    assert messages.count() == len(calls)
    for i, (call, pico) in enumerate(sorted(calls, key=lambda cp: cp[0].end_ns)):
        text = messages.nth(i).inner_text()
        assert exact(pico) in text, f"message {i + 1} lacks its cost {exact(pico)}"
        assert call.model in text and "duration" in text and "price entry" in text
        assert f"{call.tokens.input} x $" in text  # tokens x rate = cost
    assert page.inner_text("#conv-cost") == exact(sum(p for _, p in calls))
    assert page.inner_text("#conv-span") == f"{started} – {ended}"  # the list and the page agree, to the second
    first = min(calls, key=lambda cp: cp[0].end_ns)[0]
    assert started == time.strftime("%Y-%m-%d %H:%M:%S",
                                    time.localtime((first.end_ns - round(first.duration_s * 1e6) * 1000) // 10**9))


def test_budgets_show_gauges_by_state_forecast_fans_and_advice(admin: Browse) -> None:
    page = admin.open("/budgets")
    page.wait_for_selector("[data-budget] canvas[data-points]")
    until(page, "[...document.querySelectorAll('[data-budget] canvas')].every(c => c.dataset.points)")
    states = page.eval_on_selector_all("[data-budget]", "bs => Object.fromEntries(bs.map(b => [b.dataset.budget, "
                                       "b.dataset.state]))")
    assert states == {"all-monthly": "ok", "acme-monthly": "exceeded", "globex-monthly": "ok"}
    colors = page.eval_on_selector_all("[data-budget]", "bs => Object.fromEntries(bs.map(b => [b.dataset.budget, "
                                       "b.querySelector('.gauge-fill').getAttribute('stroke')]))")
    assert colors["acme-monthly"] == "#7f1d1d" and colors["globex-monthly"] == "#16a34a"
    acme = page.inner_text("[data-budget=acme-monthly]")
    assert "exceeded" in acme and "crossed 100 % at " in acme and "(UTC+00:00)" in acme
    for name in states:
        canvas = page.locator(f"[data-budget={name}] canvas")
        assert int(canvas.get_attribute("data-points") or 0) > 0
        labels = canvas.evaluate("c => Chart.getChart(c).data.datasets.map(d => d.label)")
        assert labels[:5] == ["actual", "aggressive", "likely", "conservative", "limit"]
        assert labels[5:] == (["crossed 100 %"] if name == "acme-monthly" else labels[5:])
        fan = canvas.evaluate("c => Chart.getChart(c).data.datasets.slice(1, 4).map(d => d.data.filter(v => v !== null)"
                              ".length)")
        assert all(n >= 2 for n in fan), f"{name}: the forecast fan reaches the period end"
    page.wait_for_selector("#advice li")
    advice = page.inner_text("#advice")
    assert "Save $" in advice and "%" in advice


def _download(page: Page, fmt: str, tmp: Path) -> Path:
    with page.expect_download(timeout=20000) as info:
        page.click(f"#downloads [data-format={fmt}]")
    path = tmp / f"report.{fmt}"
    info.value.save_as(path)
    return path


def test_every_download_arrives_and_its_totals_match(admin: Browse, served: Served, tmp_path: Path) -> None:
    known = served.known
    page = admin.open("/reports?kind=summary&range=7d")
    page.wait_for_selector("[data-table=totals] tbody tr")
    assert exact(known.cost_pico) in page.inner_text("#preview-meta")
    want = Decimal(usd_text(known.cost_pico))
    rows = list(csv.DictReader(io.StringIO(_download(page, "csv", tmp_path).read_text())))
    assert Decimal(rows[0]["cost_usd"]) == want and int(rows[0]["calls"]) == known.calls
    body = json.loads(_download(page, "json", tmp_path).read_text())
    assert body["summary"]["cost_usd"] == usd_text(known.cost_pico) and body["summary"]["calls"] == known.calls
    book = openpyxl.load_workbook(_download(page, "xlsx", tmp_path))
    info = {r[0].value: r[1].value for r in book["Report"].iter_rows(min_row=3) if r[0].value}
    assert info["Cost (USD, exact)"] == usd_text(known.cost_pico)
    head = [c.value for c in book["totals"][1]]
    cells = dict(zip(head, [c.value for c in book["totals"][2]]))
    assert cells["Requests"] == known.calls and Decimal(repr(cells["Cost (USD)"])) == want
    text = "\n".join(p.extract_text() for p in PdfReader(_download(page, "pdf", tmp_path)).pages)
    assert exact_money(known.cost_pico) in text
    focus = list(csv.DictReader(io.StringIO(_download(page, "focus", tmp_path).read_text())))
    assert sum(Decimal(r["BilledCost"]) for r in focus) == want
    assert page.inner_text("#download-status").startswith("FOCUS downloaded")


def test_scoped_token_sees_only_its_organization(browser: Browser, served: Served) -> None:
    b = browse(browser, served.url, token=ACME_TOKEN)
    bodies: list[dict[str, object]] = []
    b.page.on("response", lambda r: bodies.append(r.json()) if "/api/v1/events" in r.url and r.ok else None)
    page = b.open("/?range=7d")
    wait_overview(page)
    acme = served.known.by_org["acme"]
    assert f"exact {exact(acme['cost_pico'])}" in page.inner_text("[data-card=cost]")
    assert f"{acme['calls']:,}" in page.inner_text("[data-card=requests]")
    orgs = page.eval_on_selector_all("select[data-field=organization] option", "os => os.map(o => o.value)")
    assert orgs == ["", "acme"]
    page = b.open("/activity?range=7d")
    page.wait_for_selector("#feed tbody tr[data-call]")
    calls = [c for body in bodies for c in body["calls"]]  # type: ignore[union-attr]
    assert calls and {c["dimensions"]["organization"] for c in calls} == {"acme"}
    page = b.open("/budgets")
    page.wait_for_selector("[data-budget]")
    assert page.eval_on_selector_all("[data-budget]", "bs => bs.map(b => b.dataset.budget)") == ["acme-monthly"]
    page = b.open("/conversations?range=7d")
    page.wait_for_selector("#conversations tbody tr")
    assert "conv-acme" in page.inner_text("#conversations") and "conv-globex" not in page.inner_text("#conversations")
    b.check()
    b.page.context.close()


def test_without_a_token_the_page_asks_for_one_and_calls_nothing(browser: Browser, served: Served) -> None:
    b = browse(browser, served.url, token="")
    page = b.open("/")
    assert "needs an access token" in page.inner_text("#notice")
    assert not [u for u in b.requests if "/api/v1/" in u]
    page.fill("#token-input", ACME_TOKEN)
    page.click("#token-save")
    wait_overview(page)
    assert page.evaluate("document.cookie") == ""
    assert page.evaluate("sessionStorage.getItem('genai-meter-token')") == ACME_TOKEN
    b.check()
    b.page.context.close()


@pytest.mark.parametrize("path", ["/?range=7d", "/activity", "/conversations?range=7d", "/conversations/conv-acme",
                                  "/budgets", "/reports?kind=detailed&group_by=customer"])
def test_phone_width_has_no_horizontal_overflow(browser: Browser, served: Served, path: str) -> None:
    b = browse(browser, served.url, width=390, height=844)
    page = b.open(path)
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    b.check()
    b.page.context.close()


def test_page_and_static_files_come_from_the_package(served: Served) -> None:
    with urllib.request.urlopen(served.url + "/") as r:
        html = r.read().decode()
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert "http://" not in html.replace(served.url, "") and "https://" not in html
    with urllib.request.urlopen(served.url + "/static/vendor/chart.umd.min.js") as r:
        assert b"Chart.js v4.6.1" in r.read(400)


def test_one_default_range_kept_in_the_url_and_carried_by_the_tabs(admin: Browse) -> None:
    for path in ("/", "/activity", "/conversations", "/reports"):
        page = admin.open(path)
        assert "range=7d" in page.url, path  # the same default everywhere, written into the URL
        assert page.get_attribute("[data-range='7d']", "class") == "active"
    page = admin.open("/activity?range=30d&customer=cust-beta")
    hrefs = page.eval_on_selector_all("nav.tabs a[data-nav]", "as => as.map(a => a.getAttribute('href'))")
    assert all("range=30d" in h and "customer=cust-beta" in h for h in hrefs), hrefs
    page.click("nav.tabs a[data-nav=conversations]")
    page.wait_for_url("**/conversations?**")
    assert "range=30d" in page.url and "customer=cust-beta" in page.url


def test_the_overview_refreshes_itself_and_can_be_paused(admin: Browse, served: Served) -> None:
    page = admin.open("/?range=24h&refresh=10s")
    wait_overview(page)
    until(page, "document.getElementById('refresh').dataset.rounds === '1'")
    assert page.get_attribute("#refresh", "data-state") == "on"
    before = int(page.inner_text("[data-card=requests] .value").replace(",", ""))
    call = make_call(8, time.time_ns(), random.Random(2))
    write_calls(served.site.config, [call], served.known)
    until(page, f"document.querySelector('[data-card=requests] .value').textContent.replace(',', '') === '{before + 1}'",
          timeout_s=30)  # the next round (10 s) shows it, no reload
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    page.click("#refresh-pause")
    assert page.get_attribute("#refresh", "data-state") == "paused"
    rounds = page.get_attribute("#refresh", "data-rounds")
    page.wait_for_timeout(12000)  # longer than the interval: paused, no round
    assert page.get_attribute("#refresh", "data-rounds") == rounds
    page.select_option("#refresh-every", "off")
    assert "refresh=off" in page.url and page.get_attribute("#refresh", "data-state") == "off"
