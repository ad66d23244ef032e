"""`genai-meter ledger export --format csv` neutralises formula cells like the report service's CSVs."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from genai_meter.config import Config
from genai_meter.ledger import open_writer
from genai_meter.ledger.command import main
from genai_meter.ledger.csvsafe import FORMULA_TRIGGERS
from tests.ledger.support import HOUR_NS, T0, entry

PAYLOADS = ['=HYPERLINK("http://evil.example/","x")', "+1+1", "-2+3", "@SUM(1)", "\t=1", "\r=1"]


def test_export_csv_has_no_live_formula(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    writer = open_writer(url, Config())
    writer.submit([entry(i, T0 + i * HOUR_NS, service=p, model=p, conversation=p, user="u" + p)
                   for i, p in enumerate(PAYLOADS)]).result(10)
    writer.close()
    out = io.StringIO()
    assert main(["export", "--ledger", url, "--from", "2026-01-01", "--to", "2026-01-02"], Config(), out) == 0
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == len(PAYLOADS)
    live = [v for row in rows for v in row.values()
            if v[:1] in FORMULA_TRIGGERS and not v.lstrip("+-").replace(".", "").isdigit()]
    assert live == []
    assert {row["model"] for row in rows} == {"'" + p for p in PAYLOADS}
    assert {row["service"] for row in rows} == {"'" + p for p in PAYLOADS}
