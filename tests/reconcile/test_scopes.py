"""Who sees the reconciliation: a row is one day x provider x model of the provider's own report, which no
organization scope can split. Admin tokens see every row; a scope of providers (and of the projects
`reconcile.match_dimensions` matches) sees exactly its rows, both sides filtered alike; any other scope,
and every scoped token on the metrics, is refused; no token is 401.

Ledger: the scenario's real spans (their resource's project.id is proj-7, dimension `project`). Provider:
OpenAI usage pages (scenario.py) with projects proj-7 and proj-9, and an Anthropic usage report in the
shape of fixtures/anthropic_usage.json.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date

import pytest
import yaml
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from genai_meter.config import load_config
from genai_meter.ledger import open_reader
from genai_meter.reconcile import read_export
from genai_meter.reconcile.store import store
from genai_meter.reports.service.app import create_app
from genai_meter.reports.service.scopes import token_hash
from tests.reconcile.scenario import (
    BEFORE,
    EXACT_DAY,
    MISSING_DAY,
    WINDOW_TO,
    midnight,
    result,
    scenario_spans,
    store_spans,
    usage_page,
    write_page,
)
from tests.reconcile.support import load, write_json

TOKENS = {"admin": {"admin": True}, "acme": {"scope": {"organization": ["acme"]}},
          "openai": {"scope": {"provider": ["openai"]}}, "p7": {"scope": {"project": ["proj-7"]}},
          "openai-model": {"scope": {"provider": ["openai"], "model": ["gpt-4o"]}}}
QUERY = f"/api/v1/reconciliation?from={BEFORE}&to={WINDOW_TO}"


def anthropic_report(day: date) -> dict:
    page = copy.deepcopy(load("anthropic_usage.json")[1])  # type: ignore[index]
    bucket = page["data"][0]
    bucket["starting_at"] = f"{day.isoformat()}T00:00:00Z"
    bucket["ending_at"] = f"{date.fromordinal(day.toordinal() + 1).isoformat()}T00:00:00Z"
    return page


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    tmp = tmp_path_factory.mktemp("scopes")
    path = tmp / "genai-meter.yaml"
    path.write_text(yaml.safe_dump({
        "ledger": {"url": f"sqlite:///{tmp / 'ledger.db'}"},
        "dimensions": {"organization": {"attributes": ["organization.id"]},
                       "project": {"attributes": ["project.id"], "resource": True}},
        "reconcile": {"match_dimensions": {"project": "project"}},
        "reports": {"tokens": [{"sha256": token_hash(name), "name": name, **spec} for name, spec in TOKENS.items()]},
    }), encoding="utf-8")
    config = load_config(path)
    store_spans(config, [s for s in scenario_spans() if s["end_ns"] < int(midnight(MISSING_DAY).timestamp()) * 10**9])
    openai = usage_page({EXACT_DAY: [result(4, "default", project="proj-7"), result(3, "default", project="proj-9")],
                         MISSING_DAY: [result(2, "default", project="proj-9")]})
    exports = [read_export(write_page(tmp / "openai.json", openai)),
               read_export(write_json(tmp, "anthropic.json", anthropic_report(EXACT_DAY)))]
    assert config.ledger.url is not None
    store(config.ledger.url, config, exports, migrate=True)
    reader = open_reader(config.ledger.url, config)
    yield create_app(config, reader, ledger_url=config.ledger.url).test_client()
    reader.close()


def get(client: FlaskClient, token: str | None, url: str = QUERY) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = client.get(url, headers=headers)
    return answer.status_code, (answer.get_json() if answer.mimetype == "application/json" else
                                {"text": answer.get_data(as_text=True)})


def keys(body: dict) -> list[tuple[str, str, str, str]]:
    return [(r["day"], r["provider"], r["model"], r["project"]) for r in body["rows"]]


def test_admin_sees_every_row(client: FlaskClient) -> None:
    status, body = get(client, "admin")
    assert status == 200, body
    exact, missing = EXACT_DAY.isoformat(), MISSING_DAY.isoformat()
    assert keys(body) == [(exact, "anthropic", "claude-sonnet-4-0", "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ"),
                          (exact, "openai", "gpt-4o", "proj-7"), (exact, "openai", "gpt-4o", "proj-9"),
                          (missing, "openai", "gpt-4o", "proj-9")]
    assert [r["cause"] for r in body["rows"]] == ["unmetered_service", "exact", "unmetered_service",
                                                  "unmetered_service"]


def test_no_token_is_401_and_an_organization_scope_is_403(client: FlaskClient) -> None:
    assert get(client, None)[0] == 401
    status, body = get(client, "acme")
    assert status == 403
    assert body["error"]["parameter"] == "organization"
    assert "not split by organization" in body["error"]["message"]
    for fmt in ("csv", "xlsx", "pdf"):  # no format leaks a row either
        assert get(client, "acme", f"{QUERY}&format={fmt}")[0] == 403
    assert get(client, "openai-model")[0] == 403  # model: one key spans dated names the scope does not list


def test_a_provider_scope_sees_its_provider_only(client: FlaskClient) -> None:
    status, body = get(client, "openai")
    assert status == 200
    assert {r["provider"] for r in body["rows"]} == {"openai"}
    assert body["totals"]["requests_provider"] == 9
    assert {d["provider"] for d in body["days_covered"]} == {"openai"}
    status, body = get(client, "openai", f"{QUERY}&provider=anthropic")
    assert status == 403 and body["error"]["parameter"] == "provider"


def test_a_project_scope_sees_its_projects_rows_only(client: FlaskClient) -> None:
    status, body = get(client, "p7")
    assert status == 200
    assert keys(body) == [(EXACT_DAY.isoformat(), "openai", "gpt-4o", "proj-7")]
    assert body["totals"]["requests_provider"] == 4 and body["totals"]["requests_ledger"] == 4
    status, answer = get(client, "p7", f"{QUERY}&format=csv")
    assert status == 200 and "proj-9" not in answer["text"] and "anthropic" not in answer["text"]


def test_the_metrics_are_for_admins(client: FlaskClient) -> None:
    url = "/api/v1/reconciliation/metrics"
    assert get(client, None, url)[0] == 401
    for token in ("acme", "openai", "p7"):
        assert get(client, token, url)[0] == 403, token
    status, body = get(client, "admin", url)
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(body["text"])}
    drift = {s.labels["provider"]: s.value for s in families["genai_meter_reconciliation_difference_usd"].samples}
    assert drift["openai"] == pytest.approx(0.475, abs=1e-12)  # 9 requests reported, 4 metered: 5 x $0.095
