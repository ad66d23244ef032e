"""The page at a desktop (1280 px) and a phone (390 px) width, in a real headless Chromium.

- The demo's budget after a minute of the demo's traffic (a quarter used): the page names the minute
  it will cross 100 % in the budget's own offset, about three minutes ahead, before anything crossed
  and before any alert could fire; thresholds and words come from the budget's config.
- The trend charts have every bucket of the range (filled by the API), evenly spaced.
- Unpriced calls never show as $0, upper bounds are marked, and a card says what is exact.
- The tab bar and the tables fit both widths (every tab visible, every feed column readable).
"""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime

import pytest
from playwright.sync_api import Browser, Page

from tests.web.conftest import Browse, Served, browse
from tests.web.site import ADMIN_TOKEN
from tests.web.test_page import until, wait_overview

pytestmark = pytest.mark.slow
WIDTHS = [pytest.param((1280, 900), id="1280px"), pytest.param((390, 844), id="390px")]
TABS = ("overview", "activity", "conversations", "budgets", "reports", "reconciliation")


def api(served: Served, path: str) -> dict:
    request = urllib.request.Request(served.url + "/api/v1/" + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        body = json.load(answer)
    assert isinstance(body, dict)
    return body


def opened(browser: Browser, served: Served, size: tuple[int, int]) -> Browse:
    return browse(browser, served.url, width=size[0], height=size[1])


def fits(page: Page, width: int, selector: str) -> None:
    """Every element of `selector` lies within the viewport's width, and the page does not scroll sideways."""
    boxes = page.eval_on_selector_all(selector, "els => els.map(e => { const r = e.getBoundingClientRect(); "
                                                "return [r.left, r.right, r.width, r.height]; })")
    assert boxes, selector
    for left, right, w, h in boxes:
        assert w > 0 and h > 0 and left >= 0 and right <= width + 0.5, (selector, boxes)
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("size", WIDTHS)
def test_the_demo_budget_shows_its_crossing_minutes_ahead(browser: Browser, demo_served: Served,
                                                          size: tuple[int, int]) -> None:
    b = opened(browser, demo_served, size)
    answers: list[dict] = []
    b.page.on("response", lambda r: answers.append(r.json()) if r.url.endswith("/api/v1/budgets") and r.ok else None)
    page = b.open("/budgets")
    until(page, "document.querySelector('[data-budget=demo-daily]') !== null")
    budget = answers[0]["budgets"][0]  # the answer the page shows
    assert budget["name"] == "demo-daily" and budget["thresholds"] == [25, 50, 75, 100]
    assert budget["crossed_at"] is None and budget["state"] != "exceeded"  # nothing crossed 100 % yet
    projection = budget["projection"]
    crossing = projection["crossing"]["likely"]
    assert projection["state"] == "will_exceed" and crossing is not None
    ahead = datetime.fromisoformat(crossing).timestamp() - demo_served.now_ns / 1e9
    assert 120 <= ahead <= 240, (crossing, ahead)  # a quarter in a minute: the rest in about three more
    assert crossing.endswith(budget["utc_offset"])  # named in the budget's own offset

    page.wait_for_selector("[data-budget=demo-daily] canvas[data-points]")
    panel = page.locator("[data-budget=demo-daily]")
    assert panel.get_attribute("data-projection") == "will_exceed"
    assert panel.get_attribute("data-crossing") == crossing
    text = panel.inner_text()
    local = f"{crossing[:10]} {crossing[11:16]} (UTC{budget['utc_offset']})"
    assert f"projected to cross 100 % at {local}" in text, text
    assert budget["status"] in text and "thresholds 25 / 50 / 75 / 100 %" in text
    assert "75 / 90 / 95" not in page.inner_text("main")  # no fixed thresholds anywhere
    assert "LLMBudgetExhaustionForecast" in text  # how the alert relates to what the page shows
    spent = panel.locator("[data-exactness]").first
    assert spent.get_attribute("data-exactness") in ("incomplete", "upper_bound")  # the self-hosted model: unpriced
    point = panel.locator("canvas").evaluate(
        "c => { const d = Chart.getChart(c).data.datasets.find(s => s.label === 'crosses 100 % (likely)'); "
        "return d && d.data[0]; }")
    assert point and point["x"] == datetime.fromisoformat(crossing).timestamp() * 1000
    assert point["y"] == pytest.approx(float(budget["limit"]))
    fits(page, size[0], "[data-budget=demo-daily] .projection")
    b.check()
    b.page.context.close()


@pytest.mark.parametrize("size", WIDTHS)
def test_trend_charts_have_every_bucket_evenly_spaced(browser: Browser, served: Served, size: tuple[int, int]) -> None:
    b = opened(browser, served, size)
    for query, step_s, counts in (("range=24h&step=1h", 3600, (24, 25)), ("range=1h&step=1m", 60, (60, 61))):
        page = b.open("/?" + query)
        wait_overview(page)
        for chart in ("chart-cost-time", "chart-requests-time"):
            buckets = int(page.get_attribute(f"#{chart}", "data-buckets") or 0)
            labels = page.evaluate(f"Chart.getChart(document.getElementById('{chart}')).data.labels")
            assert buckets in counts and len(labels) == buckets, (query, buckets)
        rows = api(served, "reports/trend?" + query + "&group_by=model")["tables"]["series"]["rows"]
        starts = sorted({datetime.fromisoformat(r["start"].replace("Z", "+00:00")).timestamp() for r in rows})
        assert len(starts) in counts and {round(y - x) for x, y in zip(starts, starts[1:])} == {step_s}
    b.check()
    b.page.context.close()


def _cost_cells(page: Page) -> list[tuple[str, str]]:
    """(model, cost cell text) of every feed row."""
    return page.eval_on_selector_all("#feed tbody tr", "rows => rows.map(r => [r.querySelector('[data-key=model]')"
                                                       ".innerText, r.querySelector('[data-key=cost_usd]').innerText])")


@pytest.mark.parametrize("size", WIDTHS)
def test_estimates_are_marked_and_unpriced_calls_never_show_0(browser: Browser, demo_served: Served,
                                                             size: tuple[int, int]) -> None:
    b = opened(browser, demo_served, size)
    page = b.open("/?range=1h")
    page.wait_for_selector("[data-card=exactness]")
    cost = page.inner_text("[data-card=cost]")
    assert "exact $" not in cost and "unpriced" in cost  # never "exact" over unpriced or bounded calls
    assert page.get_attribute("[data-card=cost] .value [data-exactness]", "data-exactness") != "exact"
    exactness = page.inner_text("[data-card=exactness]")
    assert "unpriced" in exactness and "upper bound" in exactness
    assert page.inner_text("[data-card=exactness] .value") != "exact"

    page = b.open("/activity?range=1h&limit=100")
    until(page, "document.querySelectorAll('#feed tbody tr').length === 100")
    cells = _cost_cells(page)
    unpriced = [c for m, c in cells if m == "llama-3.1-70b-ft"]
    assert unpriced and set(unpriced) == {"unpriced"}
    assert not [c for _, c in cells if c.replace("$", "").strip() in ("0", "0.00", "0.000000")]
    assert any(c.startswith("≤ $") for _, c in cells)  # cache tokens unknown: an upper bound
    fits(page, size[0], "#feed tbody tr:first-child [data-key=cost_usd]")

    page = b.open("/conversations/demo-chat-1")
    page.wait_for_selector("#messages .msg")
    assert "unpriced" in page.inner_text("#messages")
    assert page.get_attribute("#conv-cost [data-exactness]", "data-exactness") in ("incomplete", "upper_bound")
    b.check()
    b.page.context.close()


@pytest.mark.parametrize("size", WIDTHS)
def test_the_tab_bar_and_the_tables_fit(browser: Browser, served: Served, size: tuple[int, int]) -> None:
    width = size[0]
    b = opened(browser, served, size)
    for path in ("/?range=7d", "/activity", "/conversations", "/budgets", "/reports", "/reconciliation"):
        page = b.open(path)
        fits(page, width, "nav.tabs a[data-nav]")  # every tab on screen: none cut off
        assert page.locator("nav.tabs a[data-nav]").count() == len(TABS)
    page = b.open("/activity?range=7d")
    page.wait_for_selector("#feed tbody tr[data-call]")
    columns = page.eval_on_selector_all("#feed thead th", "hs => hs.map(h => h.dataset.key)")
    assert len(columns) == 11 and "conversation" in columns
    fits(page, width, "#feed tbody tr:first-child td")  # all eleven cells of a row readable, none clipped away
    if width >= 600:
        assert page.evaluate("(() => { const s = document.querySelector('#feed .scroll'); "
                             "return s.scrollWidth <= s.clientWidth; })()")
        panel_right = page.evaluate("document.querySelector('#feed').getBoundingClientRect().right")
        rights = page.eval_on_selector_all("#feed td[data-key=conversation]",
                                           "cs => cs.map(c => c.getBoundingClientRect().right)")
        assert rights and max(rights) <= panel_right + 0.5
    else:
        labels = page.eval_on_selector_all("#feed tbody tr:first-child td",
                                           "cs => cs.map(c => getComputedStyle(c, '::before').content)")
        assert '"Conversation"' in labels and '"Cost"' in labels  # one card per call, every value labelled
    b.check()
    b.page.context.close()
