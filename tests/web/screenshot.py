"""Regenerate docs/screenshot.png (`make screenshot`): the page over 30 days of synthetic history,
served on 127.0.0.1 and photographed by Debian's headless Chromium.

    .venv/bin/python -m tests.web.screenshot [OUT.png] [--width 1280] [--height 1500] [--path /?range=30d]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml
from playwright.sync_api import sync_playwright

from genai_meter.config import load_config
from genai_meter.ledger import open_writer
from genai_meter.reports.web.history import synthetic_history
from tests.web.conftest import chromium_path
from tests.web.site import Site

REPO = Path(__file__).resolve().parents[2]
BUDGETS = [{"name": "all-monthly", "period": "month", "limit_usd": "250"},
           {"name": "acme-monthly", "match": {"organization": "acme"}, "period": "month", "limit_usd": "60"},
           {"name": "globex-weekly", "match": {"organization": "globex"}, "period": "week", "limit_usd": "40"}]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", nargs="?", default=str(REPO / "docs" / "screenshot.png"))
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1500)
    parser.add_argument("--path", default="/?range=30d")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "genai-meter.yaml"
        path.write_text(yaml.safe_dump({"ledger": {"url": f"sqlite:///{Path(tmp) / 'ledger.db'}"}, "budgets": BUDGETS}))
        config = load_config(path)
        assert config.ledger.url is not None
        writer = open_writer(config.ledger.url, config)
        try:
            assert all(writer.submit(synthetic_history(config, 30, time.time_ns(), seed=1)).result(timeout=120))
        finally:
            writer.close()
        site = Site(config)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": args.width, "height": args.height})
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.goto(site.url + args.path)
                page.wait_for_load_state("networkidle")
                page.wait_for_timeout(500)
                failed = page.locator("p.error, .notice:not([hidden])").all_inner_texts()
                if errors or failed:  # never commit a picture of a broken page
                    print(f"the page did not load cleanly: {errors + failed}", file=sys.stderr)
                    return 1
                page.screenshot(path=args.out)
                browser.close()
        finally:
            site.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
