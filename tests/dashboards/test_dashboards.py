"""Structure of the generated Grafana dashboards: schema, ids, layout, datasource, units, variables,
and every query valid PromQL over names that the contract or the recording rules define."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from genai_meter.alert_rules import build_rules
from genai_meter.config import Config, load_config, parse_config
from genai_meter.contract import Contract
from genai_meter.dashboards import SCHEMA_VERSION, build_dashboards
from tests.support.prometheus import promtool

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "genai-meter.yaml"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
NO_QUERY_TYPES = {"row", "text"}
GRAFANA_VARIABLES = {"__range", "__range_s", "__range_ms", "__interval", "__interval_ms", "__rate_interval"}

CUSTOM = {
    "metric_prefix": "acme_ai",
    "dimensions": {
        "customer": {"attributes": ["customer.id"]},
        "user": {"attributes": ["enduser.id"], "hash": True},
        "team": {"attributes": ["team.id"], "resource": True},
        "feature": {"attributes": ["feature.id"], "enabled": False},
    },
    "pricing": {"currency": {"code": "EUR", "per_usd": "0.92"}},
    "budgets": [
        {"name": "eu-monthly", "period": "month", "utc_offset": "+01:00", "limit_usd": 1000},
        {"name": "team-a-tokens", "match": {"team": "~team-a.*"}, "period": "week", "limit_tokens": 5000000,
         "thresholds": [50, 80, 100, 120]},
    ],
}


def configs() -> dict[str, Config]:
    return {"defaults": Config(), "example": load_config(EXAMPLE), "custom": parse_config(CUSTOM)}


@pytest.fixture(scope="module", params=["defaults", "example", "custom"])
def variant(request: pytest.FixtureRequest) -> tuple[Config, dict[str, dict[str, Any]]]:
    config = configs()[request.param]
    return config, build_dashboards(config)


def all_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def data_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in all_panels(board) if p["type"] not in NO_QUERY_TYPES]


def exprs(boards: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(board["uid"], panel["title"], target["expr"])
            for board in boards.values() for panel in data_panels(board) for target in panel["targets"]]


def test_five_dashboards_with_stable_uids(variant):
    _, boards = variant
    assert sorted(boards) == ["genai-meter-budgets.json", "genai-meter-cost.json", "genai-meter-overview.json",
                              "genai-meter-performance.json", "genai-meter-usage.json"]
    for name, board in boards.items():
        assert name == f"{board['uid']}.json" and len(board["uid"]) <= 40
        assert board["id"] is None and board["title"].startswith("GenAI Meter / ")
        assert "genai-meter" in board["tags"]


def test_schema_version_matches_the_panel_json(variant):
    """We declare a current schema, so nothing may need a migration Grafana would then skip."""
    _, boards = variant
    for board in boards.values():
        assert board["schemaVersion"] == SCHEMA_VERSION == 41
        assert isinstance(board["refresh"], str)  # schema 40
        assert "time_options" not in board["timepicker"]  # schema 41
        for legacy in ("rows", "style", "sharedCrosshair", "hideControls"):
            assert legacy not in board
        for panel in all_panels(board):
            assert panel["type"] in {"row", "text", "stat", "gauge", "bargauge", "timeseries", "table", "piechart"}
            if panel["type"] in NO_QUERY_TYPES:
                continue
            assert isinstance(panel["datasource"], dict)  # schema 36: references, not names
            legend = panel.get("options", {}).get("legend")
            if legend is not None:
                assert "showLegend" in legend  # schema 37
            custom = panel["fieldConfig"]["defaults"].get("custom", {})
            if panel["type"] == "table":
                assert "displayMode" not in custom and custom["cellOptions"] == {"type": "auto"}  # schema 38
            for transformation in panel.get("transformations", []):
                assert "refIdToStat" not in transformation.get("options", {})  # schema 39
            assert "fieldOptions" not in panel.get("options", {})  # pre-7 bar gauge options
            for target in panel["targets"]:
                assert "intervalFactor" not in target and "step" not in target


def test_panel_ids_unique_and_grid_without_overlap(variant):
    _, boards = variant
    for board in boards.values():
        panels = all_panels(board)
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids)), board["uid"]
        cells: dict[tuple[int, int], int] = {}
        for panel in panels:
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["w"] > 0 and pos["h"] > 0 and pos["x"] + pos["w"] <= 24, (board["uid"], panel)
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in cells, f"{board['uid']}: panel {panel['id']} overlaps {cells[(x, y)]}"
                    cells[(x, y)] = panel["id"]


def test_datasource_by_variable_everywhere(variant):
    _, boards = variant
    for board in boards.values():
        names = [v["name"] for v in board["templating"]["list"]]
        assert names[0] == "datasource" and board["templating"]["list"][0]["type"] == "datasource"
        for panel in data_panels(board):
            assert panel["datasource"] == DATASOURCE, panel["title"]
            assert panel["targets"], panel["title"]
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs))
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE and target["expr"].strip()
        for variable in board["templating"]["list"][1:]:
            assert variable["datasource"] == DATASOURCE


def test_every_data_panel_has_a_unit_and_a_question(variant):
    config, boards = variant
    money = "currencyEUR" if config.pricing.currency.code == "EUR" else "currencyUSD"
    seen_units = set()
    for board in boards.values():
        for panel in data_panels(board):
            assert panel.get("description"), f"{board['uid']}: {panel['title']} has no description"
            unit = panel["fieldConfig"]["defaults"]["unit"]
            assert unit, panel["title"]
            seen_units.add(unit)
            if panel["type"] == "table":
                columns = {o["matcher"]["options"]: o["properties"][0]["value"]
                           for o in panel["fieldConfig"]["overrides"]}
                assert columns and all(columns.values()), panel["title"]
                seen_units.update(columns.values())
            is_money = ("cost" in panel["title"].lower() or "spend" in panel["title"].lower()) and \
                panel["type"] != "table" and "change" not in panel["title"].lower()
            if is_money and "scope" not in panel["title"]:
                assert unit == money or panel["title"].startswith(("Spent", "Spend against")), \
                    (panel["title"], unit)
    assert {money, "count:tokens", "s", "percentunit"} <= seen_units


def test_money_in_the_configured_currency():
    boards = build_dashboards(parse_config(CUSTOM))
    cost = [e for _, title, e in exprs(boards) if title == "Total cost"]
    assert cost and all(e.endswith("* 0.92") for e in cost)
    usd = build_dashboards(Config())
    assert not any("* 1)" in e or e.endswith("* 1") for _, _, e in exprs(usd))


def test_template_variables(variant):
    config, boards = variant
    expected = ["datasource", "service", "environment", "provider", "model", "operation", *config.active_dimensions]
    for board in boards.values():
        variables = board["templating"]["list"]
        names = [v["name"] for v in variables]
        extra = ["budget"] if board["uid"] == "genai-meter-budgets" else []
        assert names == expected + extra
        for variable in variables[1:]:
            assert variable["type"] == "query" and variable["multi"] and variable["includeAll"]
            assert variable["allValue"] == ".*" and variable["current"]["value"] == ["$__all"]
            assert variable["query"]["query"] == variable["definition"].strip()
            assert variable["definition"].startswith("label_values(")
        if "user" not in config.active_dimensions:
            assert "user" not in names


def test_top_users_only_when_user_dimension_is_on():
    default_titles = {p["title"] for b in build_dashboards(Config()).values() for p in all_panels(b)}
    assert "Top customers" in default_titles and "Top users" not in default_titles
    custom_titles = {p["title"] for b in build_dashboards(parse_config(CUSTOM)).values() for p in all_panels(b)}
    assert {"Top customers", "Top users", "Cost by team", "Cost by user"} <= custom_titles
    assert "Cost by feature" not in custom_titles  # disabled dimension


PRESETS = ["now-5m", "now-15m", "now-1h", "now-6h", "now-24h", "now-7d", "now-30d", "now-90d", "now/d", "now/M"]


def test_time_presets_and_refresh(variant):
    _, boards = variant
    for board in boards.values():
        ranges = [(r["from"], r["to"]) for r in board["timepicker"]["quick_ranges"]]
        assert ranges == [(start, "now") for start in PRESETS]
        links = [link["url"] for link in board["links"] if link["type"] == "link"]
        assert links == [f"/d/{board['uid']}?from={start}&to=now" for start in PRESETS]
        assert board["time"]["from"] in {"now-24h", "now-7d", "now-30d", "now-90d"}
        assert board["timepicker"]["refresh_intervals"][0] == "10s"
        assert board["refresh"] == "1m"


def test_queries_only_use_defined_variables_and_metrics(variant):
    config, boards = variant
    contract = Contract.from_config(config)
    recorded = {rule["record"] for rules in build_rules(config).values() for group in rules["groups"]
                for rule in group["rules"] if "record" in rule}
    for board in boards.values():
        defined = {v["name"] for v in board["templating"]["list"]} | GRAFANA_VARIABLES
        for panel in data_panels(board):
            for target in panel["targets"]:
                expr = target["expr"]
                used = set(re.findall(r"\$\{?([A-Za-z_]+)", expr))
                assert used <= defined, (panel["title"], used - defined)
                for name in re.findall(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b", expr):
                    assert name in recorded, (panel["title"], name)
                if contract.names.prefix != "llm":
                    assert not re.search(r"\bllm_", expr), (panel["title"], expr)


def substitute(expr: str) -> str:
    """Grafana's variables replaced the way Grafana does for a 24-hour range."""
    for name, value in (("${__range}", "86400s"), ("$__range_s", "86400"), ("$__range", "86400s"),
                        ("$__rate_interval", "75s"), ("$__interval", "15m")):
        expr = expr.replace(name, value)
    return re.sub(r"\$\{?[A-Za-z_]+\}?", ".*", expr)


def test_every_query_is_valid_promql(variant, tmp_path):
    """promtool parses every panel query (variables substituted) as a recording rule expression."""
    _, boards = variant
    rules = [{"record": f"check:query:{i}", "expr": substitute(expr)} for i, (_, _, expr) in enumerate(exprs(boards))]
    variables = [{"record": f"check:variable:{i}", "expr": "vector(1)"} for i in range(1)]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "queries", "rules": rules + variables}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_docs_describe_every_panel():
    doc = (REPO / "docs" / "dashboards.md").read_text(encoding="utf-8")
    for board in build_dashboards(load_config(EXAMPLE)).values():
        assert board["title"] in doc
        for panel in data_panels(board):
            title = re.sub(r"^(Budget \S+):.*$", r"\1", panel["title"])
            assert title in doc, f"docs/dashboards.md does not describe {board['title']} / {panel['title']}"


def test_a_dimension_named_like_a_dashboard_variable_is_refused():
    config = parse_config({"dimensions": {"datasource": {"attributes": ["ds.id"]}}})
    with pytest.raises(ValueError, match="datasource"):
        build_dashboards(config)


def test_live_totals_read_raw_counters_over_fixed_ranges():
    overview = build_dashboards(load_config(EXAMPLE))["genai-meter-overview.json"]
    live = {p["title"]: p for p in overview["panels"] if p.get("timeFrom")}
    assert sorted(live) == sorted(f"{m} {r}" for m in ("Requests", "Tokens", "Cost") for r in ("last hour", "today"))
    for title, panel in live.items():
        assert panel["timeFrom"] == ("1h" if title.endswith("last hour") else "now/d")
        expr = panel["targets"][0]["expr"]
        assert ":increase15m" not in expr and re.search(r"\bllm_(requests|tokens|cost_usd)_total\{", expr)
        assert "unless" in expr  # series born inside the range count whole


def test_series_panels_take_their_bucket_from_the_range():
    boards = build_dashboards(load_config(EXAMPLE))
    tiered = [(b["uid"], p) for b in boards.values() for p in data_panels(b)
              if any(t.get("interval") for t in p["targets"])]
    assert {(uid, p["title"]) for uid, p in tiered} >= {
        ("genai-meter-overview", "Requests"), ("genai-meter-overview", "Tokens"), ("genai-meter-overview", "Cost"),
        ("genai-meter-cost", "Cost over time by model"), ("genai-meter-usage", "Requests over time by operation")}
    for _uid, panel in tiered:
        steps = [t["interval"] for t in panel["targets"]]
        assert steps == ["1m", "1h", "1d"], panel["title"]
        minute, hour, day = (t["expr"] for t in panel["targets"])
        assert "[1m]" in minute and ":increase15m" not in minute and "<= 21600" in minute
        assert ":increase15m" in hour and "[1h]" in hour and "> 21600" in hour and "<= 691200" in hour
        assert ":increase15m" in day and "[1d]" in day and "> 691200" in day


def test_rollup_panels_say_so():
    for board in build_dashboards(load_config(EXAMPLE)).values():
        for panel in data_panels(board):
            if any(":increase15m" in t["expr"] for t in panel["targets"]):
                assert panel["description"].endswith("As of the last rollup (<= 15 min)."), panel["title"]


def test_alert_link_targets_exist():
    from genai_meter.promql import links

    boards = {b["uid"]: b for b in build_dashboards(load_config(EXAMPLE)).values()}
    expected = {links.BUDGETS_TABLE: "Budgets", links.COST_BY_SERVICE: "Cost by service",
                links.UNPRICED_MODELS: "Models without a price", links.ERROR_RATE_BY_MODEL: "Error rate by model",
                links.LATENCY_P95_BY_MODEL: "Latency p95 by model",
                links.METER_SPANS: "Spans received, counted and skipped", links.UNMETERED_CALLS: "Unmetered calls",
                links.LABEL_OVERFLOW: "Label overflow", links.TOP_USAGE: "Top customers",
                links.REQUESTS_BY_MODEL: "Requests by model", links.USAGE_OVER_TIME: "Requests over time by operation"}
    for ref, title in expected.items():
        panel = next((p for p in boards[ref.uid]["panels"] if p["id"] == ref.panel_id), None)
        assert panel is not None and panel["title"] == title, (ref, title)


def test_requests_by_model_lists_priced_models_without_requests():
    usage = build_dashboards(load_config(EXAMPLE))["genai-meter-usage.json"]
    expr = next(p for p in usage["panels"] if p["title"] == "Requests by model")["targets"][0]["expr"]
    assert "provider_model:llm_priced_models:catalog" in expr and "llm_price_usd_per_million_tokens" in expr
    assert "and on (provider) group by (provider)" in expr  # only the providers called


def test_every_dashboard_filters_by_organization():
    for board in build_dashboards(Config()).values():
        assert "organization" in [v["name"] for v in board["templating"]["list"]], board["uid"]


def test_docs_answer_every_question():
    doc = (REPO / "docs" / "dashboards.md").read_text(encoding="utf-8")
    assert "## Which panel answers what" in doc
    for words in ("zero", "tool", "prom-label-proxy", "Explore", "report service", "1 minute", "today"):
        assert words in doc, words
