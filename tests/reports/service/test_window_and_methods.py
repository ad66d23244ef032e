"""Two details of the HTTP surface: the OpenAPI description says that `range` and `from`/`to` exclude
each other, and a method the service does not serve (TRACE, POST) is a 405 that names the allowed ones."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.reports.conftest import auth


def test_openapi_says_range_and_from_to_exclude_each_other(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    params = {p["name"]: p for p in doc["paths"]["/api/v1/reports/{kind}"]["get"]["parameters"]}
    assert "not with from/to" in params["range"]["description"] and params["range"]["x-exclusive-with"] == ["from", "to"]
    assert "not with range" in params["from"]["description"] and params["to"]["x-exclusive-with"] == ["range"]
    answer = client.get("/api/v1/reports/summary?range=7d&from=2026-11-01T00:00:00Z", headers=auth())
    assert answer.status_code == 400 and answer.get_json()["error"]["parameter"] == "range"  # as described


def test_a_method_not_served_is_405_with_allow(client: FlaskClient) -> None:
    for path in ("/api/v1/reports/summary", "/api/v1/budgets", "/"):
        for method in ("TRACE", "POST", "DELETE"):
            answer = client.open(path, method=method, headers=auth())
            assert answer.status_code == 405, (path, method)
            assert set(answer.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
            assert answer.get_json()["error"]["status"] == 405
