"""Pure parts: windows, parameters, scopes, exact splits, money text, config validation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from genai_meter.config import ConfigError, load_config, parse_config
from genai_meter.reports.render.focus import _split
from genai_meter.reports.render.numbers import exact_money
from genai_meter.reports.service.params import Forbidden, Param, ParamError, parse_query
from genai_meter.reports.service.ranges import check_step, default_step, iso, parse_time, resolve_window
from genai_meter.reports.service.scopes import TokenTable, apply_scope, load_tokens, scope_covers, token_hash
from tests.reports.conftest import NOW_NS

H = 3600 * 10**9
D = 24 * H


def window(preset: str, offset: timedelta = timedelta(0)) -> tuple[str, str, str, str]:
    w = resolve_window(preset, "", "", NOW_NS, offset, 1100)
    return iso(w.start_ns), iso(w.end_ns), iso(w.previous_start_ns), iso(w.previous_end_ns)


def test_presets() -> None:  # NOW is Friday 2026-11-20 12:00 UTC
    assert window("24h") == ("2026-11-19T12:00:00Z", "2026-11-20T12:00:00Z", "2026-11-18T12:00:00Z",
                             "2026-11-19T12:00:00Z")
    assert window("today")[:2] == ("2026-11-20T00:00:00Z", "2026-11-20T12:00:00Z")
    assert window("yesterday") == ("2026-11-19T00:00:00Z", "2026-11-20T00:00:00Z", "2026-11-18T00:00:00Z",
                                   "2026-11-19T00:00:00Z")
    assert window("this_week")[:3] == ("2026-11-16T00:00:00Z", "2026-11-20T12:00:00Z", "2026-11-09T00:00:00Z")
    assert window("this_month") == ("2026-11-01T00:00:00Z", "2026-11-20T12:00:00Z", "2026-10-01T00:00:00Z",
                                    "2026-10-20T12:00:00Z")
    assert window("last_month")[:2] == ("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")
    assert window("this_year")[:3] == ("2026-01-01T00:00:00Z", "2026-11-20T12:00:00Z", "2025-01-01T00:00:00Z")
    # the budgets' offset: a month in UTC-05:00 starts at 05:00 UTC
    assert window("this_month", timedelta(hours=-5))[0] == "2026-11-01T05:00:00Z"


def test_from_to() -> None:
    assert parse_time("from", "2026-11-01T00:00:00+01:00") == parse_time("from", "2026-10-31T23:00:00Z")
    assert parse_time("from", "2026-11-01T00:00:00.5Z") % 10**9 == 500_000_000
    w = resolve_window("", "2026-11-01T00:00:00Z", "", NOW_NS, timedelta(0), 1100)
    assert w.end_ns == NOW_NS and w.previous_end_ns == w.start_ns
    with pytest.raises(ParamError, match="to: the range may span at most 10 days"):
        resolve_window("", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", NOW_NS, timedelta(0), 10)
    with pytest.raises(ParamError, match="from: .* is not RFC 3339"):
        parse_time("from", "2026-11-01")


def test_steps() -> None:
    w = resolve_window("90d", "", "", NOW_NS, timedelta(0), 1100)
    assert default_step(w) == "1d"
    assert check_step("1h", w.start_ns, w.end_ns) == "1h"
    with pytest.raises(ParamError) as err:
        check_step("1m", w.start_ns, w.end_ns)
    assert err.value.parameter == "step"


def test_parse_query() -> None:
    params = (Param("format", "f", enum=("json", "csv"), default="json"), Param("top", "t", kind="integer",
                                                                                 minimum=1, maximum=5))
    parsed = parse_query({"model": ["a", "b"], "top": ["3"]}, params, ("model",), True)
    assert parsed.filters == {"model": ["a", "b"]} and parsed.values == {"top": 3, "format": "json"}
    for bad, name in (({"top": ["9"]}, "top"), ({"format": ["xml"]}, "format"), ({"x": ["1"]}, "x"),
                      ({"model": ["a\x00"]}, "model"), ({"format": ["json", "csv"]}, "format")):
        with pytest.raises(ParamError) as err:
            parse_query(bad, params, ("model",), True)
        assert err.value.parameter == name
    with pytest.raises(ParamError):
        parse_query({"model": ["a"]}, params, ("model",), False)  # this endpoint takes no filters


def test_scopes() -> None:
    scope = {"organization": ["acme"]}
    assert apply_scope({}, scope) == {"organization": ["acme"]}
    assert apply_scope({"model": ["x"]}, scope) == {"model": ["x"], "organization": ["acme"]}
    assert apply_scope({"organization": ["acme"]}, scope) == {"organization": ["acme"]}
    with pytest.raises(Forbidden):
        apply_scope({"organization": ["acme", "globex"]}, scope)
    assert apply_scope({"organization": ["globex"]}, None) == {"organization": ["globex"]}
    assert scope_covers(scope, {"organization": "acme", "feature": "x"})
    assert not scope_covers(scope, {}) and not scope_covers(scope, {"organization": "~acme.*"})


def test_tokens_stored_as_sha256_and_tokens_file(tmp_path: Path) -> None:
    (tmp_path / "tokens.yaml").write_text(yaml.safe_dump([{"sha256": token_hash("t2"), "scope": {"customer": ["c"]},
                                                           "name": "cust"}]))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"reports": {
        "tokens": [{"sha256": token_hash("t1"), "admin": True}], "tokens_file": "tokens.yaml"}}))
    config = load_config(tmp_path / "c.yaml")
    table = TokenTable(load_tokens(config))
    assert table.principal("t1") is not None and table.principal("t1").admin  # type: ignore[union-attr]
    cust = table.principal("t2")
    assert cust is not None and cust.scope == {"customer": ["c"]}
    assert table.principal("t3") is None
    with pytest.raises(ConfigError):
        parse_config({"reports": {"tokens": [{"sha256": token_hash("x")}]}})  # neither admin nor scope
    with pytest.raises(ConfigError):
        parse_config({"reports": {"tokens": [{"sha256": "plain-token", "admin": True}]}})
    with pytest.raises(ConfigError):
        parse_config({"reports": {"schedules": [{"name": "x", "cron": "* * * * *"}]}})  # no destination
    with pytest.raises(ConfigError):
        parse_config({"reports": {"utc_offset": "5"}})


def test_exact_split_and_money_text() -> None:
    assert _split(10, [1, 1, 1]) == [4, 3, 3] and sum(_split(10**15 + 7, [3, 5, 11])) == 10**15 + 7
    assert _split(5, [0, 0]) == [5, 0]
    assert exact_money(1_500_000_000_000) == "$1.50" and exact_money(123) == "$0.000000000123"
