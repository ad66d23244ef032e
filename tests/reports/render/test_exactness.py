"""Every money figure says whether it is exact, an upper bound or incomplete, with the counts; an unpriced
call or group is null (blank), never $0. A real ledger with known exact, bounded and unpriced calls."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from decimal import Decimal

import pytest
from flask.testing import FlaskClient

from genai_meter.config import Config
from genai_meter.ledger.model import LedgerReader
from genai_meter.records import LLMCall, TokenCounts
from tests.reports.conftest import NOW_NS, Known, auth, seeded_ledger

WINDOW = "from=2026-11-01T00:00:00Z&to=2026-11-21T00:00:00Z"
# customer -> calls as (model, unmetered); mystery-model-x has no price
CUSTOMERS = {
    "exact-co": [("gpt-4o-mini", ""), ("gpt-4o-mini", ""), ("gpt-4o-mini", "")],
    "bounded-co": [("gpt-4o-mini", "cache_unknown"), ("gpt-4o-mini", "cache_unknown")],
    "unknown-co": [("mystery-model-x", ""), ("mystery-model-x", "")],
    "mixed-co": [("gpt-4o-mini", ""), ("mystery-model-x", ""), ("gpt-4o-mini", "cache_unknown")],
}


def _calls() -> list[LLMCall]:
    calls = []
    i = 0
    for customer, specs in CUSTOMERS.items():
        for model, unmetered in specs:
            i += 1
            calls.append(LLMCall(
                service="web", environment="prod", provider="openai", model=model, operation="chat", status="ok",
                error_type="", duration_s=1.0, ttft_s=None, tokens=TokenCounts(input=1000 * i, output=100 * i),
                end_ns=NOW_NS - i * 3600 * 10**9, dimensions={"customer": customer, "organization": "acme"},
                request_model=model, trace_id=hashlib.md5(f"x{i}".encode()).digest(),
                span_id=hashlib.md5(f"x{i}".encode()).digest()[:8], unmetered=unmetered,
                conversation_id=f"conv-{customer}"))
    return calls


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, Known, LedgerReader]]:
    """This module's ledger (conftest's `app` and `client` serve it)."""
    with seeded_ledger(tmp_path_factory.mktemp("flagged"), _calls()) as seeded:
        yield seeded


def _json(client: FlaskClient, url: str) -> dict:
    response = client.get(url, headers=auth())
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_summary_carries_counts_exactness_and_caveats(client: FlaskClient) -> None:
    s = _json(client, f"/api/v1/reports/summary?{WINDOW}")["summary"]
    assert s["calls"] == 10
    assert s["calls_unpriced"] == 3 and s["calls_upper_bound"] == 3
    assert s["exactness"] == "incomplete", "unpriced calls win over upper bounds"
    assert [(x["kind"], x["calls"]) for x in s["caveats"]] == [("unpriced", 3), ("unmetered", 3)]
    assert s["unpriced_calls"] == 3 and s["unmetered_calls"] == 3  # the ledger's keys stay


@pytest.mark.parametrize("kind", ["summary", "detailed", "cost"])
def test_group_rows_say_what_each_figure_is(client: FlaskClient, kind: str) -> None:
    body = _json(client, f"/api/v1/reports/{kind}?{WINDOW}&group_by=customer")
    rows = {r["customer"]: r for r in body["tables"]["groups"]["rows"]}
    assert (rows["exact-co"]["exactness"], rows["exact-co"]["calls_unpriced"],
            rows["exact-co"]["calls_upper_bound"]) == ("exact", 0, 0)
    assert (rows["bounded-co"]["exactness"], rows["bounded-co"]["calls_upper_bound"]) == ("upper_bound", 2)
    assert (rows["mixed-co"]["exactness"], rows["mixed-co"]["calls_unpriced"]) == ("incomplete", 1)
    assert Decimal(rows["mixed-co"]["cost_usd"]) > 0
    unknown = rows["unknown-co"]
    assert unknown["exactness"] == "incomplete" and unknown["calls_unpriced"] == 2
    assert unknown["cost_usd"] is None and unknown["cost_per_call_usd"] is None and unknown["share_of_cost"] is None
    assert all(unknown[f"cost_{k}_usd"] is None for k in ("input", "output", "request"))
    totals = body["tables"]["totals"]["rows"][0]
    assert (totals["calls_unpriced"], totals["calls_upper_bound"], totals["exactness"]) == (3, 3, "incomplete")


def test_cost_per_request_divides_by_priced_requests(client: FlaskClient) -> None:
    body = _json(client, f"/api/v1/reports/summary?{WINDOW}&group_by=customer")
    mixed = next(r for r in body["tables"]["groups"]["rows"] if r["customer"] == "mixed-co")
    assert Decimal(mixed["cost_per_call_usd"]) * 2 <= Decimal(mixed["cost_usd"]) < \
        (Decimal(mixed["cost_per_call_usd"]) + Decimal("1e-12")) * 2


def test_every_report_table_with_money_carries_exactness(client: FlaskClient) -> None:
    for kind in ("summary", "detailed", "cost", "trend"):
        body = _json(client, f"/api/v1/reports/{kind}?{WINDOW}&group_by=customer&compare=previous_period")
        for name, table in body["tables"].items():
            keys = {col["key"] for col in table["columns"]}
            if "cost_usd" in keys and name != "forecast":
                assert {"calls_unpriced", "calls_upper_bound", "exactness"} <= keys, (kind, name)
    by_model = _json(client, f"/api/v1/reports/cost?{WINDOW}")["tables"]["by_model"]["rows"]
    mystery = next(r for r in by_model if r["model"] == "mystery-model-x")
    assert mystery["cost_usd"] is None and mystery["change_usd"] is None and mystery["change_pct"] is None
    trend = _json(client, f"/api/v1/reports/trend?{WINDOW}&step=1h&group_by=customer")["tables"]["series"]["rows"]
    # steps with calls of that customer only: the filled empty steps are an exact zero
    assert {r["exactness"] for r in trend if r["customer"] == "unknown-co" and r["calls"]} == {"incomplete"}
    assert {r["exactness"] for r in trend if r["customer"] == "unknown-co" and not r["calls"]} <= {"exact"}
    assert all(r["cost_usd"] is None for r in trend if r["customer"] == "unknown-co" and r["calls"])


def test_csv_has_the_columns_and_blank_unknown_cost(client: FlaskClient) -> None:
    response = client.get(f"/api/v1/reports/summary?{WINDOW}&group_by=customer&format=csv", headers=auth())
    rows = {r["customer"]: r for r in csv.DictReader(io.StringIO(response.get_data(as_text=True)))}
    assert rows["unknown-co"]["cost_usd"] == "" and rows["unknown-co"]["exactness"] == "incomplete"
    assert rows["bounded-co"]["calls_upper_bound"] == "2" and rows["bounded-co"]["exactness"] == "upper_bound"


def test_events_say_priced_and_never_zero(client: FlaskClient) -> None:
    calls = _json(client, "/api/v1/events?limit=50")["calls"]
    assert len(calls) == 10
    for call in calls:
        if call["model"] == "mystery-model-x":
            assert call["priced"] is False and call["cost_usd"] is None and call["exactness"] == "incomplete"
            assert all(v is None for v in call["cost_by_class_usd"].values())
        else:
            assert call["priced"] is True and Decimal(call["cost_usd"]) > 0
            assert call["exactness"] == ("upper_bound" if call["unmetered"] == "cache_unknown" else "exact")


def test_conversations_carry_exactness(client: FlaskClient) -> None:
    items = {x["conversation"]: x for x in _json(client, f"/api/v1/conversations?{WINDOW}")["conversations"]}
    assert items["conv-unknown-co"]["cost_usd"] is None
    assert (items["conv-unknown-co"]["exactness"], items["conv-unknown-co"]["calls_unpriced"]) == ("incomplete", 2)
    assert (items["conv-bounded-co"]["exactness"], items["conv-bounded-co"]["calls_upper_bound"]) == ("upper_bound", 2)
    assert items["conv-exact-co"]["exactness"] == "exact"
    one = _json(client, "/api/v1/conversations/conv-mixed-co")
    assert one["exactness"] == "incomplete" and one["calls_unpriced"] == 1 and one["calls_upper_bound"] == 1
    assert Decimal(one["cost_usd"]) > 0
    assert [x["priced"] for x in one["calls"]].count(False) == 1
    assert _json(client, "/api/v1/conversations/conv-unknown-co")["cost_usd"] is None
