"""The Reconciliation page in a real headless Chromium at 1280 and 390 px: the scenario of
tests/reconcile/scenario.py (the days before today: real spans in the ledger, an OpenAI usage
page imported) shows 0.000000 on the exact day, $0.190000 for the calls the meter never saw and $0.332500
for the day billed at the priority tier, each with its cause; the drift chart draws, every cause is
explained, the page fits both widths, a CSV downloads, and an organization-scoped token is refused.
Screenshots of both widths are written to the test's temporary directory (RECONCILIATION_SHOTS=DIR
keeps them).
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Browser

from genai_meter.config import load_config
from genai_meter.reconcile import read_export
from genai_meter.reconcile.store import store
from genai_meter.reports.service.scopes import token_hash
from tests.reconcile.scenario import scenario_page, scenario_spans, store_spans, write_page
from tests.web.conftest import Served, browse
from tests.web.site import ACME_TOKEN, ADMIN_TOKEN, Known, Site
from tests.web.test_page import until
from tests.web.test_widths import fits

pytestmark = pytest.mark.slow
WIDTHS = [pytest.param((1280, 900), id="1280px"), pytest.param((390, 844), id="390px")]


@pytest.fixture(scope="module")
def recon_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("recon-web")
    path = tmp / "genai-meter.yaml"
    path.write_text(yaml.safe_dump({
        "ledger": {"url": f"sqlite:///{tmp / 'ledger.db'}"},
        "dimensions": {"organization": {"attributes": ["organization.id"]}},
        "reports": {"tokens": [{"sha256": token_hash(ADMIN_TOKEN), "admin": True, "name": "ops"},
                               {"sha256": token_hash(ACME_TOKEN), "scope": {"organization": ["acme"]},
                                "name": "acme"}]}}), encoding="utf-8")
    config = load_config(path)
    store_spans(config, scenario_spans())
    assert config.ledger.url is not None
    store(config.ledger.url, config, [read_export(write_page(tmp / "usage.json", scenario_page()))])
    site = Site(config)
    yield Served(site, Known(), time.time_ns())
    site.close()


def shots() -> Path | None:
    folder = os.environ.get("RECONCILIATION_SHOTS")
    return Path(folder) if folder else None


@pytest.mark.parametrize("size", WIDTHS)
def test_the_page_shows_each_days_difference_and_cause(browser: Browser, recon_served: Served,
                                                       size: tuple[int, int], tmp_path: Path) -> None:
    b = browse(browser, recon_served.url, width=size[0], height=size[1])
    page = b.open("/reconciliation?range=7d")
    page.wait_for_selector("#recon-table tbody tr[data-cause]", timeout=15000)
    until(page, "document.getElementById('chart-drift').dataset.points !== undefined")
    rows = page.eval_on_selector_all("#recon-table tbody tr", "trs => trs.map(tr => [tr.dataset.cause, "
                                     "tr.querySelector('td.diff').innerText, tr.querySelector('td.why').innerText])")
    assert [(cause, diff) for cause, diff, _ in rows] == [("exact", "$0.000000"), ("unmetered_calls", "$0.190000"),
                                                           ("price", "$0.332500")]
    assert rows[1][2] == "the provider counts 6 requests, the ledger 4: 2 calls the meter never saw ($0.19)"
    assert rows[2][2].startswith("same usage, the provider's cost is $0.3325 higher: it billed 5 requests at the "
                                 "priority tier")
    assert int(page.get_attribute("#chart-drift", "data-points") or 0) >= 6  # difference and costs, three days
    assert page.inner_text("[data-card=difference] .value") == "$0.522500"
    assert "1 exact · 1 unmetered calls · 1 price" in page.inner_text("[data-card=rows]")
    causes = page.eval_on_selector_all("dl.causes dt", "dts => dts.map(dt => dt.id)")
    assert causes == ["cause-exact", "cause-unmetered_calls", "cause-price", "cause-token_accounting",
                      "cause-unmetered_service", "cause-ledger_only"]
    assert "What to do" in page.inner_text("#recon-causes")
    assert page.get_attribute("nav.tabs a[data-nav=reconciliation]", "class") == "active"
    fits(page, size[0], "#recon-cards .card")
    fits(page, size[0], "nav.tabs a")
    if size[0] < 600:
        fits(page, size[0], "#recon-table td")  # one card per row: every cell readable
    for folder in filter(None, (tmp_path, shots())):
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"reconciliation-{size[0]}.png"), full_page=True)
    b.check()
    b.page.context.close()


def test_the_csv_download(browser: Browser, recon_served: Served, tmp_path: Path) -> None:
    b = browse(browser, recon_served.url)
    page = b.open("/reconciliation?range=7d")
    page.wait_for_selector("#recon-table tbody tr[data-cause]", timeout=15000)
    with page.expect_download(timeout=20000) as info:
        page.click("#recon-downloads [data-format=csv]")
    target = tmp_path / "reconciliation.csv"
    info.value.save_as(target)
    with target.open(encoding="utf-8") as handle:
        found = [(r["cause"], r["difference_usd"]) for r in csv.DictReader(handle)]
    assert found == [("exact", "0.000000000000"), ("unmetered_calls", "0.190000000000"),
                     ("price", "0.332500000000")]
    b.check()
    b.page.context.close()


def test_an_organization_scope_is_told_why_it_sees_nothing(browser: Browser, recon_served: Served) -> None:
    b = browse(browser, recon_served.url, token=ACME_TOKEN)
    page = b.open("/reconciliation?range=7d")
    page.wait_for_selector("#recon-table p.error", timeout=15000)
    assert "not split by organization" in page.inner_text("#recon-table")
    assert page.locator("#recon-table tbody tr").count() == 0
    b.page.context.close()
