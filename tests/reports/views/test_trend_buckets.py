"""The trend report's series has every step of the requested range, zeros included, evenly spaced."""

from __future__ import annotations

from datetime import datetime

from flask.testing import FlaskClient

from genai_meter.ledger.model import MAX_POINTS
from genai_meter.reports.insights.buckets import FILL_LIMIT, fill, zero_point
from tests.reports.conftest import auth


def starts(rows: list[dict]) -> list[float]:
    return sorted({datetime.fromisoformat(r["start"].replace("Z", "+00:00")).timestamp() for r in rows})


def test_seven_days_at_one_hour_give_168_evenly_spaced_buckets(client: FlaskClient) -> None:
    body = client.get("/api/v1/reports/trend?range=7d&step=1h", headers=auth()).get_json()
    rows = body["tables"]["series"]["rows"]
    hours = starts(rows)
    assert len(hours) == len(rows) == 168  # the ledger has calls in fewer hours than that
    assert {b - a for a, b in zip(hours, hours[1:])} == {3600.0}
    assert sum(r["calls"] for r in rows) == body["summary"]["calls"]
    empty = [r for r in rows if r["calls"] == 0]
    assert empty and all(r["cost_usd"] in ("0.000000000000", None) or float(r["cost_usd"]) == 0 for r in empty)


def test_one_hour_at_one_minute_gives_every_minute(client: FlaskClient) -> None:
    rows = client.get("/api/v1/reports/trend?range=1h&step=1m", headers=auth()).get_json()["tables"]["series"]["rows"]
    minutes = starts(rows)
    assert len(minutes) in (60, 61)  # a window that does not start on the minute touches 61 minutes
    assert {b - a for a, b in zip(minutes, minutes[1:])} == {60.0}


def test_every_group_gets_every_step(client: FlaskClient) -> None:
    rows = client.get("/api/v1/reports/trend?range=7d&step=1d&group_by=model",
                      headers=auth()).get_json()["tables"]["series"]["rows"]
    days = starts(rows)
    models = {r["model"] for r in rows}
    assert len(days) in (7, 8) and len(rows) == len(days) * len(models)


def test_max_points_still_bound_the_step(client: FlaskClient) -> None:
    answer = client.get("/api/v1/reports/trend?range=90d&step=1m", headers=auth())
    assert answer.status_code == 400 and str(MAX_POINTS) in answer.get_json()["error"]["message"]


def test_fill_keeps_what_the_ledger_gave_and_stays_bounded() -> None:
    given = {("a",): [zero_point(120, ("a",))]}
    given[("a",)][0].totals.calls = 3
    filled = fill(given, [0, 60, 120], grouped=True)
    assert [(p.start_ns, p.totals.calls) for p in filled[("a",)]] == [(0, 0), (60, 0), (120, 3)]
    assert fill({}, [0, 60], grouped=False)[()][1].totals.calls == 0
    many = {(str(i),): [] for i in range(FILL_LIMIT // 10 + 1)}
    assert fill(many, list(range(10)), grouped=True) is many  # past the bound: as given
