"""`GET /api/v1/latency`: call duration percentiles per group from every raw call, scope respected."""

from __future__ import annotations

import math

from flask.testing import FlaskClient

from tests.reports.conftest import ACME_TOKEN, auth

W = "from=2026-10-01T00:00:00Z&to=2026-11-21T00:00:00Z"


def expected(ledger: tuple, **match: str) -> dict[str, float]:
    """avg and nearest-rank percentiles of the stored durations (whole microseconds) of the matching calls."""
    values = sorted(max(0, round(call.duration_s * 1_000_000)) for call, _ in ledger[1].calls_list
                    if all(call.dimensions.get(k) == v for k, v in match.items()))
    n = len(values)

    def rank(q: float) -> float:
        return values[max(0, math.ceil(q * n) - 1)] / 1_000_000

    return {"calls": n, "avg_s": round(sum(values) / n / 1_000_000, 6), "p50_s": rank(0.5), "p95_s": rank(0.95),
            "p99_s": rank(0.99)}


def test_latency_overall(client: FlaskClient, ledger: tuple) -> None:
    response = client.get(f"/api/v1/latency?{W}", headers=auth())
    assert response.status_code == 200
    body = response.get_json()
    assert body["group_by"] == [] and body["from"] == "2026-10-01T00:00:00Z"
    [group] = body["groups"]
    assert group["key"] == {}
    assert {k: group[k] for k in ("calls", "avg_s", "p50_s", "p95_s", "p99_s")} == expected(ledger)


def test_latency_grouped_and_filtered(client: FlaskClient, ledger: tuple) -> None:
    body = client.get(f"/api/v1/latency?{W}&group_by=organization&customer=c-1", headers=auth()).get_json()
    groups = {g["key"]["organization"]: g for g in body["groups"]}
    assert set(groups) == {"acme", "globex"}
    for org, group in groups.items():
        want = expected(ledger, organization=org, customer="c-1")
        assert {k: group[k] for k in want} == want


def test_latency_scoped_token_sees_only_its_organization(client: FlaskClient, ledger: tuple) -> None:
    body = client.get(f"/api/v1/latency?{W}&group_by=organization", headers=auth(ACME_TOKEN)).get_json()
    assert [g["key"] for g in body["groups"]] == [{"organization": "acme"}]
    want = expected(ledger, organization="acme")
    assert {k: body["groups"][0][k] for k in want} == want
    escape = client.get(f"/api/v1/latency?{W}&organization=globex", headers=auth(ACME_TOKEN))
    assert escape.status_code == 403
    assert escape.get_json()["error"]["parameter"] == "organization"


def test_latency_bad_input_names_the_parameter(client: FlaskClient) -> None:
    response = client.get(f"/api/v1/latency?{W}&group_by=nope", headers=auth())
    assert response.status_code == 400
    assert response.get_json()["error"]["parameter"] == "group_by"
    assert client.get("/api/v1/latency?range=2d", headers=auth()).status_code == 400


def test_latency_in_openapi(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json", headers=auth()).get_json()
    assert "/api/v1/latency" in spec["paths"]
