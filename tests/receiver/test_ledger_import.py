"""`genai-meter ledger import`: historical spans from OTLP files (protobuf, JSON lines, gzip) are stored
once, priced like live spans, rolled up behind the watermark, and reported to the last digit."""

from __future__ import annotations

import gzip
import json
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

import pytest

from genai_meter.cli import main
from genai_meter.config import Config
from genai_meter.ledger import open_reader
from genai_meter.money import to_pico
from tests.support.otlp import gpt4o_cost, json_request, json_span, llm_attributes, make_request, make_span

DAY_NS = 86400 * 10**9


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "genai-meter.yaml"
    path.write_text(f"ledger:\n  url: sqlite:///{tmp_path / 'ledger.db'}\n")
    return path


def _history(tmp_path: Path, n: int) -> tuple[list[Path], int, dict[str, int]]:
    """n spans dated over the past 30 days in two files (.pb and .jsonl.gz); (files, cost pico, calls per customer)."""
    now = time.time_ns()
    cost = 0
    per: dict[str, int] = {}
    spans, lines = [], []
    for i in range(n):
        customer = f"cust-{i % 7}"
        attrs = llm_attributes(customer=customer, input_tokens=100 + i, output_tokens=10 + i % 50)
        start = now - 30 * DAY_NS + i * (29 * DAY_NS // n)
        cost += to_pico(gpt4o_cost(100 + i, 10 + i % 50))
        per[customer] = per.get(customer, 0) + 1
        if i % 2:
            spans.append(make_span(attrs, start_ns=start))
        else:
            span = json_span(attrs)
            span["startTimeUnixNano"], span["endTimeUnixNano"] = str(start), str(start + 1_500_000_000)
            lines.append(json.dumps(json_request([span])))
    pb = tmp_path / "history.pb"
    pb.write_bytes(make_request(spans).SerializeToString())
    jl = tmp_path / "history.jsonl.gz"
    jl.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return [pb, jl], cost, per


def test_import_stores_history_once_and_reports_it_exactly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    files, cost, per = _history(tmp_path, 400)
    config = _config(tmp_path)
    main(["ledger", "--config", str(config), "migrate"])  # a ledger that already sealed up to now
    db = sqlite3.connect(tmp_path / "ledger.db")
    db.execute("INSERT OR REPLACE INTO meta VALUES ('hour_rollups_until_ns', ?)", (str(time.time_ns()),))
    db.execute("INSERT OR REPLACE INTO meta VALUES ('day_rollups_until_ns', ?)",
               (str(time.time_ns() - time.time_ns() % DAY_NS),))
    db.commit()
    db.close()
    capsys.readouterr()
    assert main(["ledger", "--config", str(config), "import", *map(str, files)]) == 0
    assert "400 calls stored, 0 already stored" in capsys.readouterr().out
    assert main(["ledger", "--config", str(config), "import", str(files[0])]) == 0
    assert "0 calls stored, 200 already stored" in capsys.readouterr().out
    reader = open_reader(f"sqlite:///{tmp_path / 'ledger.db'}", Config())
    try:
        now = time.time_ns()
        whole = reader.totals(now - 31 * DAY_NS, now, {})[0]
        assert (whole.calls, whole.cost_total_pico) == (400, cost)
        by = reader.ranked(now - 31 * DAY_NS, now, {}, ["customer"], None)
        assert {t.key[0]: t.calls for t in by.rows} == per
        assert sum(t.cost_total_pico for t in by.rows) == cost
        days = reader.series(now - 31 * DAY_NS, now, "1d", {})
        assert sum(p.totals.cost_total_pico for pts in days.values() for p in pts) == cost
    finally:
        reader.close()
    rolled = sqlite3.connect(tmp_path / "ledger.db").execute(
        "SELECT SUM(calls), SUM((c_input_hi << 32) + c_input_lo + (c_output_hi << 32) + c_output_lo) "
        "FROM rollup_hour").fetchone()
    assert rolled == (400, cost)  # every late call rolled up by its batch
    assert Decimal(cost) > 0


def test_import_names_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "spans.txt"
    bad.write_text("hello")
    assert main(["ledger", "--config", str(_config(tmp_path)), "import", str(bad)]) == 2
    assert "spans.txt: not an OTLP file" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert main(["ledger", "--config", str(_config(tmp_path)), "import", str(broken)]) == 2
    assert "broken.json" in capsys.readouterr().err
