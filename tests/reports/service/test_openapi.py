"""The generated OpenAPI description covers every route and is a valid OpenAPI document (openapi-spec-validator),
and schemathesis finds no 500 and no mismatch."""

from __future__ import annotations

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.reports.conftest import auth


def test_every_api_route_is_described(app: Flask, client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    described = set(doc["paths"])
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = rule.rule.replace("<path:", "{").replace("<", "{").replace(">", "}")
            assert path in described, path
    params = {p["name"] for p in doc["paths"]["/api/v1/reports/{kind}"]["get"]["parameters"]}
    assert {"range", "from", "to", "step", "group_by", "compare", "format", "organization", "customer"} <= params
    assert doc["security"] == [{"bearer": []}]
    fmt = next(p for p in doc["paths"]["/api/v1/reports/{kind}"]["get"]["parameters"] if p["name"] == "format")
    assert fmt["schema"]["enum"] == ["json", "csv", "xlsx", "pdf", "focus"]


def test_the_document_is_valid_openapi_and_describes_the_reconciliation(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    validate(doc)  # raises on any violation of the OpenAPI schema the document declares
    operation = doc["paths"]["/api/v1/reconciliation"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert {"range", "from", "to", "provider", "format"} <= set(params)
    assert params["format"]["schema"]["enum"] == ["json", "csv", "xlsx", "pdf"]
    assert set(operation["responses"]["200"]["content"]) == {
        "application/json", "text/csv", "application/pdf",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
    rows = operation["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["rows"]
    assert {"day", "provider", "model", "difference_usd", "cause"} <= set(rows["items"]["properties"])
    assert "/api/v1/reconciliation/metrics" in doc["paths"]


@pytest.mark.slow
def test_api_conforms(app: Flask) -> None:
    """Every operation, 15 generated requests each (valid and invalid): no 5xx, responses match the schema."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=auth())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 11
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            # a schema-valid but unknown cursor is a legitimate 400, so "valid data accepted" is not required
            case.call_and_validate(headers=auth(), excluded_checks=[positive_data_acceptance])

        check()
