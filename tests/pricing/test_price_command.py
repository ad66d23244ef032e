"""`genai-meter price`: the breakdown table, the JSON document, unpriced models, and a real subprocess.

Expected figures are worked out by hand from the genai-prices 0.2.3 catalog (gpt-4o: $2.50 in,
$1.25 cached, $10 out per million tokens; claude-sonnet-4-0: $3 in, $6 per 1h cache write, $15 out)
and from tests/fixtures/prices/overrides.yaml.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import genai_prices
import pytest

from genai_meter.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "prices"
CONFIG = str(FIXTURES / "genai-meter.yaml")  # overrides.yaml + EUR display at 0.92 per USD
EXE = Path(sys.executable).parent / "genai-meter"


@pytest.fixture(autouse=True)
def _no_config_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENAI_METER_CONFIG", raising=False)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    code = main(["price", *argv, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_table(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["price", "openai", "gpt-4o", "--input", "1000", "--cache-read", "3000", "--output", "500",
                 "--at", "2026-11-01T12:00:00Z"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "openai gpt-4o at 2026-11-01T12:00:00Z"
    assert lines[1].split() == ["class", "tokens", "USD/Mtok", "USD"]
    assert lines[2].split() == ["input", "1000", "2.5", "0.0025"]  # 1,000 x 2.50 / 1M
    assert lines[3].split() == ["cache_read", "3000", "1.25", "0.00375"]  # 3,000 x 1.25 / 1M
    assert lines[4].split() == ["cache_write", "0", "2.5", "0"]  # no cache-write price: the input price
    assert lines[5].split() == ["output", "500", "10", "0.005"]  # 500 x 10 / 1M
    assert lines[6].split() == ["reasoning", "0", "10", "0"]
    assert lines[7].split() == ["request", "1", "0/req", "0"]
    assert lines[9].split() == ["total", "0.01125"]
    assert f"price: openai/gpt-4o (source genai-prices, version {genai_prices.__version__})" in lines
    assert f"catalog genai-prices {genai_prices.__version__}, overrides none" in lines


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, err = run_json(capsys, "anthropic", "claude-sonnet-4-20250514", "--input", "2000", "--cache-read",
                              "10000", "--cache-write", "4000", "--cache-write-1h", "--output", "800",
                              "--at", "2026-11-01T12:00:00+01:00")
    assert (code, err) == (0, "")
    assert doc == {
        "priced": True,
        "provider": "anthropic",
        "model": "claude-sonnet-4-20250514",
        "at": "2026-11-01T11:00:00Z",
        "tokens": {"input": 2000, "cache_read": 10000, "cache_write": 4000, "output": 800, "reasoning": 0},
        "cache_write_1h": True,
        "service_tier": "",
        "batch": False,
        "partly_priced": False,
        "unpriced_units": [],
        "units": {},
        "unit_prices_usd_per_mtok": {"input": "3", "cache_read": "0.3", "cache_write": "6", "output": "15",
                                     "reasoning": "15"},
        "per_request_usd": "0",
        "cost_usd": {"input": "0.006", "cache_read": "0.003", "cache_write": "0.024", "output": "0.012",
                     "reasoning": "0", "request": "0"},
        "total_usd": "0.045",  # 0.006 + 0.003 + 0.024 + 0.012
        "price_source": "genai-prices",
        "price_entry": "anthropic/claude-sonnet-4-0",
        "price_version": genai_prices.__version__,
        "catalog_version": genai_prices.__version__,
        "overrides_version": "none",
    }


def test_overrides_dates_and_display_currency(capsys: pytest.CaptureFixture[str]) -> None:
    # overrides.yaml: gpt-4o 15% off from 2026-10-01 -> $2.125 in, $8.50 out per M
    args = ("openai", "gpt-4o", "--input", "1000000", "--output", "100000", "--config", CONFIG)
    code, before, _ = run_json(capsys, *args, "--at", "2026-09-30T23:59:59Z")
    assert code == 0
    assert (before["price_source"], before["total_usd"]) == ("genai-prices", "3.5")  # 2.50 + 0.1 x 10
    code, after, _ = run_json(capsys, *args, "--at", "2026-10-01")
    assert code == 0
    assert after["price_source"] == "overrides"
    assert after["price_entry"] == "openai/gpt-4o@2026-10-01 (15% off openai/gpt-4o)"
    assert after["price_version"] == "2026-10-01"
    assert after["price_note"] == "contract ACME-2026-17"
    assert after["cost_usd"]["input"] == "2.125"
    assert after["cost_usd"]["output"] == "0.85"
    assert after["total_usd"] == "2.975"
    assert after["display_currency"] == {"code": "EUR", "per_usd": "0.92", "total": "2.737"}  # 2.975 x 0.92
    assert after["overrides_version"] != "none"


def test_table_shows_the_override_and_the_display_currency(capsys: pytest.CaptureFixture[str]) -> None:
    # overrides.yaml: azure.ai.openai gpt-4o-mini $0.15 / $0.60 per M + $0.0001 per request
    code = main(["price", "azure.ai.openai", "gpt-4o-mini", "--input", "2000", "--output", "500", "--config", CONFIG])
    out, _ = capsys.readouterr()
    assert code == 0
    lines = out.splitlines()
    assert ["request", "1", "0.0001/req", "0.0001"] in [line.split() for line in lines]
    assert ["total", "0.0007"] in [line.split() for line in lines]  # 0.0003 + 0.0003 + 0.0001
    assert "= 0.000644 EUR (at 0.92 EUR per USD)" in lines
    assert any(line.startswith("price: azure.ai.openai/gpt-4o-mini (source overrides, version ") for line in lines)


def test_unknown_model_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["price", "openai", "gpt-nonexistent-9", "--input", "10", "--at", "2026-11-01"])
    out, err = capsys.readouterr()
    assert code == 3
    assert out == ""
    assert "no price for model 'gpt-nonexistent-9' of provider 'openai'" in err
    code, doc, err = run_json(capsys, "openai", "gpt-nonexistent-9", "--input", "10", "--at", "2026-11-01")
    assert code == 3
    assert doc["priced"] is False
    assert (doc["provider"], doc["model"], doc["at"]) == ("openai", "gpt-nonexistent-9", "2026-11-01T00:00:00Z")
    assert "total_usd" not in doc
    assert "no price for model" in err


def test_bad_override_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "genai-meter.yaml"
    config.write_text(f"pricing:\n  overrides: {FIXTURES / 'bad-entries.yaml'}\n", encoding="utf-8")
    code = main(["price", "openai", "gpt-4o", "--input", "1", "--config", str(config)])
    _, err = capsys.readouterr()
    assert code == 2
    assert "bad-entries.yaml: entry 0 (line 1): prices.inptu_mtok: unknown key" in err


def test_negative_tokens_are_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["price", "openai", "gpt-4o", "--input", "-5"])
    assert raised.value.code == 2
    assert "token counts cannot be negative" in capsys.readouterr().err


@pytest.mark.slow
def test_real_subprocess(tmp_path: Path) -> None:
    env = {"PATH": str(EXE.parent), "HOME": str(tmp_path)}
    done = subprocess.run([str(EXE), "price", "gcp.gemini", "gemini-2.5-pro", "--input", "150001",
                           "--cache-read", "50000", "--output", "1000", "--at", "2026-11-01", "--json"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    # genai-prices gemini-2.5-pro above 200k input tokens: $2.50 in, $0.25 cached, $15 out per M
    assert doc["cost_usd"]["input"] == "0.3750025"  # 150,001 x 2.50 / 1M
    assert doc["cost_usd"]["cache_read"] == "0.0125"  # 50,000 x 0.25 / 1M
    assert doc["cost_usd"]["output"] == "0.015"  # 1,000 x 15 / 1M
    assert doc["total_usd"] == "0.4025025"
    unknown = subprocess.run([str(EXE), "price", "openai", "gpt-nonexistent-9", "--input", "1"],
                             capture_output=True, text=True, timeout=60, env=env)
    assert unknown.returncode == 3
    assert "no price for model" in unknown.stderr


def test_service_tier_batch_and_units(capsys: pytest.CaptureFixture[str]) -> None:
    # gpt-5-mini flex: $0.125 / $1 per Mtok (genai-prices 0.2.3, from 2026-10-12)
    code, doc, _ = run_json(capsys, "openai", "gpt-5-mini", "--input", "10000", "--output", "2000",
                            "--service-tier", "Flex", "--at", "2026-11-20")
    assert code == 0 and doc["total_usd"] == "0.00325" and doc["service_tier"] == "flex"
    assert doc["price_entry"] == "openai/gpt-5-mini [flex]" and doc["partly_priced"] is False
    # gpt-audio: text $2.50 / $10, audio $32 / $64 per Mtok; no web search price
    code, doc, _ = run_json(capsys, "openai", "gpt-audio", "--input", "3000", "--output", "2000",
                            "--unit", "input_audio_tokens=3000", "--unit", "output_audio_tokens=1000",
                            "--unit", "web_searches=2", "--unit", "custom.image_hd=1", "--at", "2026-11-20")
    assert code == 0
    assert doc["units"] == {
        "input_audio_tokens": {"count": 3000, "priced": True, "priced_as": "input_audio_tokens", "per": 1000000,
                               "price_usd": "32", "cost_usd": "0.096"},
        "output_audio_tokens": {"count": 1000, "priced": True, "priced_as": "output_audio_tokens", "per": 1000000,
                                "price_usd": "64", "cost_usd": "0.064"},
        "web_searches": {"count": 2, "priced": False, "cost_usd": "0"},
        "custom.image_hd": {"count": 1, "priced": False, "cost_usd": "0"},
    }
    assert doc["total_usd"] == "0.1875"
    assert doc["partly_priced"] is True and doc["unpriced_units"] == ["custom.image_hd", "web_searches"]
    # a tier the model has no price for: the standard price, flagged; batch priced
    code, doc, _ = run_json(capsys, "openai", "gpt-4o", "--input", "10000", "--output", "2000",
                            "--service-tier", "flex", "--batch", "--at", "2026-11-20")
    assert code == 0 and doc["total_usd"] == "0.0225" and doc["unpriced_units"] == ["tier:flex"]
    assert doc["batch"] is True and doc["price_entry"] == "openai/gpt-4o [batch]"


def test_units_in_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["price", "groq", "whisper-large-v3", "--unit", "audio_seconds=3600", "--unit", "web_searches=1",
                 "--batch", "--at", "2026-11-20"])
    out, _ = capsys.readouterr()
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "groq whisper-large-v3 at 2026-11-20T00:00:00Z  [batch]"
    assert ["audio_seconds", "3600", "0.0555/h", "0.0555"] in [line.split() for line in lines]  # batch: half
    assert ["web_searches", "1", "no", "price", "0"] in [line.split() for line in lines]
    assert any(line.startswith("partly priced: no price for web_searches") for line in lines)


@pytest.mark.parametrize(("argv", "message"), [
    (["--unit", "web_searches"], "expected NAME=N"),
    (["--unit", "web_searches=-1"], "cannot be negative"),
    (["--unit", "web_searches=1", "--unit", "web_searches=2"], "--unit web_searches given twice"),
])
def test_bad_units(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    try:
        code = main(["price", "openai", "gpt-4o", *argv])
    except SystemExit as exc:  # argparse rejects a malformed value
        code = exc.code  # type: ignore[assignment]
    assert code == 2
    assert message in capsys.readouterr().err
