"""The PDF reads as a finance document: names in any script the fonts cover (never `?`), currency with
thousands separators, % signs, page x of y, a header and footer, unknown cost as `unpriced`, exact
figures in an appendix. Read back with pypdf from a real ledger with CJK, long and uncovered names.

pypdf puts a NUL between the glyphs of a CFF-based CID font (Noto Sans CJK) when it extracts text;
poppler's pdftotext reads the same file as plain UTF-8, so the tests drop the NULs.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from pypdf import PdfReader

from genai_meter.config import Config
from genai_meter.ledger.model import LedgerReader
from genai_meter.reports.render import numbers
from tests.reports.conftest import Known, auth, build_calls, seeded_ledger

WINDOW = "from=2026-10-01T00:00:00Z&to=2026-11-21T00:00:00Z"
NAMES = ("客户-Ω", "客户-Ж", "Acme Corporation International Holdings GmbH & Co. KG", "c-1", "ลูกค้า-7",
         "Ünïcödé Kunde")


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, Known, LedgerReader]]:
    calls = build_calls()
    for i, call in enumerate(calls):
        call.dimensions["customer"] = NAMES[i % len(NAMES)]
        if call.model == "text-embedding-3-large" and i % 2:
            call.model = call.request_model = "text-embedding-3-small"
    with seeded_ledger(tmp_path_factory.mktemp("named"), calls) as seeded:
        yield seeded


def _pdf(app: Flask, query: str) -> tuple[PdfReader, list[str]]:
    response = app.test_client().get(f"/api/v1/reports/{query}&format=pdf", headers=auth())
    assert response.status_code == 200, response.get_data(as_text=True)
    pdf = PdfReader(io.BytesIO(response.get_data()))
    return pdf, [page.extract_text().replace("\x00", "") for page in pdf.pages]


@pytest.mark.parametrize("query", [f"summary?{WINDOW}&group_by=customer", f"detailed?{WINDOW}&group_by=customer",
                                   f"cost?{WINDOW}&group_by=customer&compare=previous_period",
                                   f"trend?{WINDOW}&step=1d"])
def test_every_page_has_header_footer_and_page_x_of_y(app: Flask, query: str) -> None:
    pdf, pages = _pdf(app, query)
    assert len(pages) >= 2
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in text
        assert "2026-10-01 00:00 to 2026-11-21 00:00 (UTC)" in text  # the header's period
        assert re.search(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)
        assert "filters: none" in text
    whole = "\n".join(pages)
    assert "None" not in whole and "?" not in whole
    assert sum(len(page.images) for page in pdf.pages) >= 1, "charts are drawn"


def test_names_in_any_script_stay_distinct(app: Flask) -> None:
    _, pages = _pdf(app, f"summary?{WINDOW}&group_by=customer")
    text = "\n".join(pages)
    assert "客户-Ω" in text and "客户-Ж" in text
    assert "Acme Corporation International Holdings GmbH" in text
    assert "Ünïcödé Kunde" in text
    # Thai: no font here covers it; each character is named, and the document says so
    assert "[U+0E25]" in text and "no installed font covers" in text
    assert "??" not in text


def test_money_percent_and_alignment_formats(ledger: tuple, app: Flask) -> None:
    _, known, _ = ledger
    _, pages = _pdf(app, f"cost?{WINDOW}&group_by=customer")
    text = "\n".join(pages)
    assert numbers.money(known.cost_total) in text  # the key figure, in cents
    assert numbers.exact_money(known.cost_total) in text  # and exact
    assert re.search(r"\d{1,3},\d{3},\d{3}", text), "token counts with thousands separators"
    assert re.search(r"\b\d{1,3}\.\d\d %", text), "shares with a percent sign"
    rounded = text.split("Exact figures")[0].replace(numbers.exact_money(known.cost_total), "")
    amounts = re.findall(r"\$[\d,]+\.(\d+)", rounded)
    assert amounts and {len(d) for d in amounts} <= {2, 3, 4, 5, 6}
    by_model = next(line for line in text.splitlines() if "mystery-model-x" in line)
    assert "unpriced" in by_model and "$0.00 " not in by_model.split("mystery-model-x")[1][:12]
    assert "text-embedding-3-small" in text, "names are never cut mid-word"


def test_exact_figures_appendix_holds_every_group(ledger: tuple, app: Flask) -> None:
    _, known, _ = ledger
    _, pages = _pdf(app, f"summary?{WINDOW}&group_by=customer")
    appendix = "\n".join(pages).split("Exact figures (USD)", 1)[1]
    for name in ("客户-Ω", "客户-Ж", "c-1"):
        assert numbers.exact_money(known.by[("customer", name)]["cost"]) in appendix, name
    assert "unpriced" in appendix  # the customer whose every call is unpriced


def test_change_is_a_percentage(app: Flask) -> None:
    _, pages = _pdf(app, f"trend?{WINDOW}&step=1d")
    comparisons = "\n".join(pages).split("Comparisons", 1)[1].split("Cost forecast", 1)[0]
    assert re.search(r"week_over_week.*-?\d+\.\d\d %", comparisons.replace("\n", " "))


def test_plain_fpdf_money_helpers() -> None:
    assert numbers.money(1_234_567_891_000_000_000) == "$1,234,567.89"
    assert numbers.exact_money(28_772_033_750_000) == "$28.77203375"
    assert numbers.money(4_000_000_000, numbers.money_places([4_000_000_000])) == "$0.0040"
    assert numbers.money(100_000, 6) == "<$0.000001"
    assert numbers.percent(numbers.Decimal("10.004700")) == "10.00 %"


def test_only_latin1_when_no_unicode_font(monkeypatch: pytest.MonkeyPatch, app: Flask, tmp_path) -> None:
    """No font installed: Helvetica, every other character named, never `?`."""
    from genai_meter.reports.render import fonts

    monkeypatch.setattr(fonts, "SYSTEM_DIRS", (str(tmp_path),))
    monkeypatch.setenv("GENAI_METER_FONT_DIRS", "")
    fonts.find.cache_clear()
    try:
        _, pages = _pdf(app, f"summary?{WINDOW}&group_by=customer")
    finally:
        fonts.find.cache_clear()
    text = "\n".join(pages)
    assert "[U+5BA2][U+6237]-[U+03A9]" in text and "[U+5BA2][U+6237]-[U+0416]" in text
    assert "?" not in text and "Ünïcödé Kunde" in text
