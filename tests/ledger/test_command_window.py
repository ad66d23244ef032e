"""`ledger stats` without --from names the first call (not 1970), an empty ledger says it has none, and
`ledger reprice --to` defaults to now as its help says."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from genai_meter.config import Config
from genai_meter.ledger import open_writer
from genai_meter.ledger.command import main
from tests.ledger.support import HOUR_NS, T0, entry


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), Config(), out), out.getvalue()


def _ledger(tmp_path: Path, calls: int) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    writer = open_writer(url, Config())
    writer.submit([entry(i, T0 + i * HOUR_NS, "0.5") for i in range(calls)]).result(10)
    writer.close()
    return url


def test_stats_without_from_starts_at_the_first_call(tmp_path: Path) -> None:
    code, text = _run("stats", "--ledger", _ledger(tmp_path, 3), "--json")
    doc = json.loads(text)
    assert code == 0 and doc["calls"] == 3 and doc["from"] == "2026-01-01T00:00:00Z"
    code, text = _run("stats", "--ledger", _ledger(tmp_path, 3))
    assert "window   2026-01-01T00:00:00Z .. " in text and "1970" not in text


def test_stats_of_an_empty_ledger_has_no_start(tmp_path: Path) -> None:
    url = _ledger(tmp_path, 0)
    code, text = _run("stats", "--ledger", url, "--json")
    assert code == 0 and json.loads(text)["from"] is None and json.loads(text)["calls"] == 0
    code, text = _run("stats", "--ledger", url)
    assert "(no calls yet)" in text and "1970" not in text


def test_reprice_to_defaults_to_now(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = _run("reprice", "--ledger", _ledger(tmp_path, 2), "--from", "2026-01-01", "--dry-run")
    assert code == 0 and "dry run" in text  # no --to: up to now, as the help says
    with pytest.raises(SystemExit):
        main(["reprice", "--help"], Config())
    assert "end, exclusive (default: now)" in capsys.readouterr().out
