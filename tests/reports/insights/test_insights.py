"""Budgets, forecast, advice, activity and conversations answered from the real ledger."""

from __future__ import annotations

from decimal import Decimal

from flask.testing import FlaskClient

from genai_meter.money import usd_text
from genai_meter.reports.insights.budgets import state_of
from tests.reports.conftest import NOW_NS, auth

W = "from=2026-10-01T00:00:00Z&to=2026-11-21T00:00:00Z"


def month_sum(ledger: tuple, org: str | None = None) -> int:
    start = 1_793_491_200 * 10**9  # 2026-11-01T00:00:00Z
    return sum(sum(p.values()) for call, p in ledger[1].calls_list
               if start <= call.end_ns < NOW_NS and (org is None or call.dimensions["organization"] == org))


def test_budgets_exact_spend_state_and_forecast(client: FlaskClient, ledger: tuple) -> None:
    budgets = {b["name"]: b for b in client.get("/api/v1/budgets", headers=auth()).get_json()["budgets"]}
    assert set(budgets) == {"all-monthly", "acme-monthly", "globex-daily-tokens"}
    whole = budgets["all-monthly"]
    assert whole["spent"] == usd_text(month_sum(ledger))
    assert whole["from"] == "2026-11-01T00:00:00Z" and whole["to"] == "2026-12-01T00:00:00Z"
    pct = Decimal(month_sum(ledger)).scaleb(-12) / 50 * 100
    assert Decimal(whole["percent"]) == pct.quantize(Decimal("0.01"))
    assert whole["state"] == "ok" and whole["severity"] == "none"
    acme = budgets["acme-monthly"]
    assert acme["spent"] == usd_text(month_sum(ledger, "acme"))
    assert Decimal(acme["percent"]) >= 100 and acme["state"] == "exceeded" and acme["severity"] == "critical"
    assert acme["crossing_day"] is not None and acme["crossing_day"] < "2026-11-21"
    projected = whole["projected_usd"]
    assert Decimal(projected["conservative"]) <= Decimal(projected["likely"]) <= Decimal(projected["aggressive"])
    assert Decimal(projected["likely"]) >= Decimal(whole["spent"]) - Decimal("0.000001")
    tokens = budgets["globex-daily-tokens"]
    assert tokens["unit"] == "tokens" and tokens["period_label"] == "2026-11-20"
    assert int(tokens["spent"]) == sum(c.tokens.total for c, _ in ledger[1].calls_list
                                       if c.dimensions["organization"] == "globex" and
                                       NOW_NS - 12 * 3600 * 10**9 <= c.end_ns < NOW_NS)
    assert client.get("/api/v1/budgets/nope", headers=auth()).status_code == 404


def test_threshold_states() -> None:
    thresholds = [75, 90, 95, 100]
    assert state_of(Decimal("74.99"), thresholds) == ("ok", "none")
    assert state_of(Decimal("75"), thresholds) == ("info", "info")
    assert state_of(Decimal("90"), thresholds) == ("warning", "warning")
    assert state_of(Decimal("95.5"), thresholds) == ("critical", "critical")
    assert state_of(Decimal("100"), thresholds) == ("exceeded", "critical")


def test_forecast_endpoint(client: FlaskClient, ledger: tuple) -> None:
    body = client.get("/api/v1/forecast?horizon=14d", headers=auth()).get_json()
    assert body["method"] == "seasonal_naive" and body["history_days"] == 20
    assert len(body["days"]) == 14 and body["days"][0]["day"] == "2026-11-20T00:00:00Z"
    history_total = sum(Decimal(d["cost_usd"]) for d in body["history"])
    assert history_total == Decimal(sum(sum(p.values()) for c, p in ledger[1].calls_list
                                        if c.end_ns < 1_795_132_800 * 10**9)).scaleb(-12)  # before 2026-11-20
    for day in body["days"]:
        band = day["cost_usd"]
        assert Decimal(band["conservative"]) <= Decimal(band["likely"]) <= Decimal(band["aggressive"])
    assert body["month"]["spent_usd"] == usd_text(month_sum(ledger))
    assert client.get("/api/v1/forecast?horizon=400d", headers=auth()).status_code == 400


def test_events_paging_is_complete_and_newest_first(client: FlaskClient, ledger: tuple) -> None:
    seen, cursor, last = [], "", None
    while True:
        body = client.get(f"/api/v1/events?limit=97&cursor={cursor}" if cursor else "/api/v1/events?limit=97",
                          headers=auth()).get_json()
        for call in body["calls"]:
            assert last is None or call["time"] <= last
            last = call["time"]
            seen.append((call["trace_id"], call["span_id"]))
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == ledger[1].calls
    one = client.get("/api/v1/events?limit=1&model=gpt-4o&status=error", headers=auth()).get_json()["calls"]
    assert one and one[0]["model"] == "gpt-4o" and one[0]["status"] == "error"


def test_conversation_cost_arithmetic(client: FlaskClient, ledger: tuple) -> None:
    convs = client.get(f"/api/v1/conversations?{W}", headers=auth()).get_json()["conversations"]
    assert {c["conversation"] for c in convs} == {f"conv-{i}" for i in range(7)}
    detail = client.get("/api/v1/conversations/conv-0", headers=auth()).get_json()
    expected = [(c, p) for c, p in ledger[1].calls_list if c.conversation_id == "conv-0"]
    assert len(detail["calls"]) == len(expected)
    assert detail["cost_usd"] == usd_text(sum(sum(p.values()) for _, p in expected))
    times = [c["time"] for c in detail["calls"]]
    assert times == sorted(times)
    for call in detail["calls"]:
        for line in call["arithmetic"]:
            if line["usd_per_million"] is None:
                continue
            exact = Decimal(line["usd_per_million"]) * line["tokens"] / 1_000_000
            assert Decimal(line["cost_usd"]) == exact.quantize(Decimal("1e-12"))
            assert line["formula"].startswith(f"{line['tokens']} x $")
        assert sum(Decimal(v) for v in call["cost_by_class_usd"].values()) == Decimal(call["cost_usd"])


def test_dimension_values_and_zero_request_models(client: FlaskClient) -> None:
    body = client.get(f"/api/v1/dimensions/feature/values?{W}", headers=auth()).get_json()
    assert body["values"] == ["chat", "search", "summarize"]
    assert client.get("/api/v1/dimensions/nope/values", headers=auth()).status_code == 404
    detailed = client.get("/api/v1/reports/detailed?from=2026-11-19T00:00:00Z&to=2026-11-19T01:00:00Z",
                          headers=auth()).get_json()
    models = {(r["provider"], r["model"]): r["calls"] for r in detailed["tables"]["requests_by_model"]["rows"]}
    assert ("self-hosted", "llama-ft") in models and 0 in models.values()


def test_compare_and_trend_sections(client: FlaskClient) -> None:
    body = client.get("/api/v1/reports/summary?range=7d&compare=previous_period", headers=auth()).get_json()
    prev = body["summary"]["previous"]
    assert prev["from"] == "2026-11-06T12:00:00Z" and prev["to"] == "2026-11-13T12:00:00Z"
    change = body["summary"]["change"]
    assert Decimal(change["cost_usd"]) == Decimal(body["summary"]["cost_usd"]) - Decimal(prev["cost_usd"])
    trend = client.get("/api/v1/reports/trend?range=this_month&step=1d", headers=auth()).get_json()
    assert trend["from"] == "2026-11-01T00:00:00Z"
    tables = trend["tables"]
    assert {r["comparison"] for r in tables["comparisons"]["rows"]} == {"week_over_week", "period_over_period"}
    heat = tables["heatmap"]["rows"]
    assert sum(r["calls"] for r in heat) == sum(r["calls"] for r in tables["series"]["rows"])
    assert {r["day_of_week"] for r in heat} <= {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
