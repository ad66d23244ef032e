"""`genai-meter ledger ...` through `command.main`: stats (text and the exact JSON), export, reprice
dry run, prune, backup, forget, and clear errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from genai_meter.config import Config
from genai_meter.ledger import open_writer
from genai_meter.ledger.command import main, parse_time
from genai_meter.money import usd_text
from tests.ledger import oracle
from tests.ledger.support import DAY_NS, HOUR_NS, T0, entry


@pytest.fixture()
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    writer = open_writer(url, Config())
    writer.submit([entry(i, T0 + i * HOUR_NS, "1.000000000001", customer="acme") for i in range(50)]).result(10)
    writer.close()
    return url


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), Config(), out), out.getvalue()


def test_stats_json_is_exactly_the_documented_object(url: str) -> None:
    code, text = _run("stats", "--ledger", url, "--from", "2026-01-01", "--to", "2026-01-02T01:00:00Z", "--json")
    assert code == 0
    doc = json.loads(text)
    rows = oracle.stored_rows([entry(i, T0 + i * HOUR_NS, "1.000000000001") for i in range(25)], Config())
    assert doc == {"calls": 25, "cost_usd": usd_text(sum(sum(r.costs) for r in rows)),
                   "tokens": {"input": 2500, "cache_read": 250, "cache_write": 0, "output": 1250, "reasoning": 0},
                   "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T01:00:00Z"}
    assert doc["cost_usd"] == "25.000037500025"


def test_stats_text(url: str) -> None:
    code, text = _run("stats", "--ledger", url, "--from", str(T0 // 10**9))
    assert code == 0 and "calls    50" in text and "cost     USD 50.000075000050" in text
    assert "tokens   cache_read   500" in text


def test_export_csv_and_jsonl(url: str, tmp_path: Path) -> None:
    code, text = _run("export", "--ledger", url, "--from", "2026-01-01", "--to", "2026-01-01T10:00Z")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert code == 0 and len(rows) == 10 and rows[0]["end_ns"] == str(T0 + 9 * HOUR_NS)
    assert rows[0]["cost_usd_input"] == "1.000000000001" and json.loads(rows[0]["dimensions"]) == {"customer": "acme"}
    code, _ = _run("export", "--ledger", url, "--format", "jsonl", "-o", str(tmp_path / "x.jsonl"))
    lines = (tmp_path / "x.jsonl").read_text().splitlines()
    assert code == 0 and len(lines) == 50 and json.loads(lines[-1])["end_ns"] == T0


def test_reprice_dry_run_prune_backup_forget(url: str, tmp_path: Path) -> None:
    code, text = _run("reprice", "--ledger", url, "--from", "2026-01-01", "--to", "2026-01-03", "--dry-run")
    assert code == 0 and "dry run" in text and "calls 48, changed 48" in text
    assert "openai/gpt-4o: 48.000072000048 -> 0.036600000000 (-47.963472000048)" in text
    assert _run("stats", "--ledger", url, "--json")[1].startswith('{"calls": 50, "cost_usd": "50.000075000050"')
    code, text = _run("prune", "--ledger", url)
    assert code == 0 and text.startswith("deleted ") and text.endswith(" raw calls\n")
    code, text = _run("backup", "--ledger", url, str(tmp_path / "b.db"))
    assert code == 0 and (tmp_path / "b.db").is_file()
    assert _run("forget", "--ledger", url, "--customer", "acme")[0] == 0


def test_clear_errors(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("stats", "--ledger", url, "--from", "yesterday")[0] == 2
    assert "--from: expected an ISO date/time" in capsys.readouterr().err
    assert _run("stats", "--ledger", f"sqlite:///{tmp_path / 'nope.db'}")[0] == 2
    assert "no ledger here" in capsys.readouterr().err
    assert _run("stats", "--ledger", "none")[0] == 2
    assert _run("stats", "--ledger", "ftp://x")[0] == 2
    assert "unsupported ledger URL" in capsys.readouterr().err
    assert parse_time("2026-01-01T00:00:00.5+01:00", "--from") == T0 - 3600 * 10**9 + 500_000_000
    assert parse_time("2026-01-02", "--to") == T0 + DAY_NS


def test_clickhouse_that_is_not_there_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("stats", "--ledger", "clickhouse://app:secret@127.0.0.1:1/usage")[0] == 2
    err = capsys.readouterr().err
    assert "clickhouse://127.0.0.1:1: cannot connect" in err and "secret" not in err
