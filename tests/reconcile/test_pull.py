"""`pull` against a loopback server that serves the documented pages: paging, 429 + Retry-After,
retries on 5xx and timeouts, one deadline, keys and base URLs.

Endpoints, parameters and headers, as documented:
- OpenAI: `GET /v1/organization/usage/{completions,embeddings,images,audio_speeches,
  audio_transcriptions}` and `GET /v1/organization/costs` with start_time / end_time (Unix seconds),
  bucket_width=1d, group_by, limit, page; `Authorization: Bearer $OPENAI_ADMIN_KEY` (OpenAI API
  reference, Usage and Costs; the cookbook "How to use the Usage API and Cost API").
- Anthropic: `GET /v1/organizations/usage_report/messages` and `/v1/organizations/cost_report` with
  starting_at / ending_at (RFC 3339), bucket_width=1d, group_by[], limit, page; headers `x-api-key`
  and `anthropic-version: 2023-06-01` (Anthropic API reference, Usage and Cost API).
- OpenRouter: `GET /api/v1/activity?date=YYYY-MM-DD` with a management key as bearer token.
Page shapes: see test_openai.py, test_anthropic.py, test_openrouter.py.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email.message import Message
from typing import Any

import pytest

from genai_meter.config import ReconcileConfig
from genai_meter.reconcile import ENDPOINTS, Coverage, PullError, ReconcileError, pull
from genai_meter.reconcile.client import backoff, retry_after
from tests.reconcile.admin_server import AdminServer
from tests.reconcile.support import load

AUG1, AUG2 = date(2025, 8, 1), date(2025, 8, 2)
KEY = "sk-admin-test-0123456789"
EMPTY_PAGE = {"object": "page", "data": [], "has_more": False, "next_page": None}
COMPLETIONS = "/v1/organization/usage/completions"


@pytest.fixture()
def server() -> Iterator[AdminServer]:
    admin = AdminServer()
    admin.start()
    yield admin
    admin.stop()


def base(server: AdminServer) -> str:
    assert server._server is not None
    return f"http://127.0.0.1:{server._server.server_address[1]}"


def completions_in_two_pages() -> list[object]:
    page: Any = load("openai_completions.json")
    first, second = copy.deepcopy(page), copy.deepcopy(page)
    first["data"], first["has_more"], first["next_page"] = page["data"][:1], True, "page_AAAAAGdGxdEiJdKOAAAAAGcqsYA="
    second["data"] = page["data"][1:]
    return [first, second]


class Waits:
    """Records the waits `pull` asks for and advances a fake clock by them (no real sleeping)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_openai_pull_follows_pages_and_honours_retry_after(server: AdminServer) -> None:
    for endpoint in ENDPOINTS["openai"]:
        server.route(endpoint.path, [EMPTY_PAGE])
    server.route(COMPLETIONS, completions_in_two_pages())
    server.route("/v1/organization/costs", [load("openai_costs.json")])
    server.script(COMPLETIONS, [(429, {"Retry-After": "3"}, b'{"error": {"message": "Rate limit reached"}}')])
    waits = Waits()
    export = pull("openai", [AUG2, AUG1], environ={"OPENAI_ADMIN_KEY": KEY}, base_url=base(server),
                  clock=waits.clock, sleep=waits.sleep)
    assert waits.waits == [3.0]
    assert [(line.source.kind, line.model_key) for line in export.lines] == [
        ("openai.usage.completions", "gpt-4o"), ("openai.usage.completions", "gpt-4o-mini"),
        ("openai.costs", "gpt-4o"), ("openai.costs", "gpt-4o"), ("openai.costs", "")]
    assert export.lines[0].tokens.as_dict()["input"] == 200 and export.lines[2].cost_pico == 60_000_000_000
    assert export.lines[0].source.file == base(server) + COMPLETIONS
    # every endpoint covers both asked days, with or without a bucket
    assert export.covers == {Coverage("openai", day, e.kind) for e in ENDPOINTS["openai"] for day in (AUG1, AUG2)}
    calls = [(query, headers) for path, query, headers in server.requests if path == COMPLETIONS]
    assert len(calls) == 3  # the 429, then two pages
    first, second = calls[1][0], calls[2][0]
    assert first == {"start_time": ["1754006400"], "end_time": ["1754179200"], "bucket_width": ["1d"], "limit": ["31"],
                     "group_by": ["model", "project_id", "api_key_id", "batch", "service_tier"]}
    assert second == dict(first, page=["page_AAAAAGdGxdEiJdKOAAAAAGcqsYA="])
    assert all(headers["authorization"] == f"Bearer {KEY}" for _, headers in calls)
    costs = next(query for path, query, _ in server.requests if path == "/v1/organization/costs")
    assert costs["group_by"] == ["project_id", "line_item"]


def test_anthropic_pull_pages_headers_and_a_retried_5xx(server: AdminServer) -> None:
    server.route("/v1/organizations/usage_report/messages", load("anthropic_usage.json"))  # type: ignore[arg-type]
    server.route("/v1/organizations/cost_report", [load("anthropic_cost.json")])
    server.script("/v1/organizations/cost_report", [(503, {}, b"overloaded")])
    waits = Waits()
    export = pull("anthropic", [AUG1, AUG2], environ={"ANTHROPIC_ADMIN_API_KEY": KEY}, base_url=base(server),
                  clock=waits.clock, sleep=waits.sleep)
    assert waits.waits == [0.5]  # the first backoff
    assert [line.source.kind for line in export.lines] == ["anthropic.usage.messages"] * 3 + ["anthropic.cost"] * 2
    assert export.lines[0].cache_write_1h == 1000 and export.lines[3].cost_pico == 1_234_500_000_000
    assert export.pairs() == {("anthropic", AUG1), ("anthropic", AUG2)}
    usage = [(q, h) for p, q, h in server.requests if p == "/v1/organizations/usage_report/messages"]
    assert [q.get("page") for q, _ in usage] == [None, ["page_MjAyNS0wOC0wMlQwMDowMDowMFo="]]
    query, headers = usage[0]
    assert query == {"starting_at": ["2025-08-01T00:00:00Z"], "ending_at": ["2025-08-03T00:00:00Z"],
                     "bucket_width": ["1d"], "limit": ["31"],
                     "group_by[]": ["model", "workspace_id", "api_key_id", "service_tier"]}
    assert headers["x-api-key"] == KEY and headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers


def test_openrouter_pull_asks_one_day_at_a_time(server: AdminServer) -> None:
    server.route("/api/v1/activity", [load("openrouter_activity.json")])
    export = pull("openrouter", [date(2025, 8, 24)], environ={"OPENROUTER_MANAGEMENT_KEY": KEY}, base_url=base(server))
    assert [line.model for line in export.lines] == ["openai/gpt-4.1", "anthropic/claude-sonnet-4"]
    ((path, query, headers),) = server.requests
    assert (path, query, headers["authorization"]) == ("/api/v1/activity", {"date": ["2025-08-24"]}, f"Bearer {KEY}")


def test_non_consecutive_days_are_asked_as_runs(server: AdminServer) -> None:
    server.route(COMPLETIONS, [EMPTY_PAGE])
    export = pull("openai", [date(2025, 8, 5), AUG1, AUG2], environ={"OPENAI_ADMIN_KEY": KEY}, base_url=base(server),
                  kinds=["openai.usage.completions"])
    assert [(q["start_time"], q["end_time"]) for _, q, _ in server.requests] == [
        (["1754006400"], ["1754179200"]), (["1754352000"], ["1754438400"])]
    assert {c.day for c in export.covers} == {AUG1, AUG2, date(2025, 8, 5)}


def test_retries_are_bounded(server: AdminServer) -> None:
    server.script(COMPLETIONS, [(500, {}, b"")] * 10)
    waits = Waits()
    with pytest.raises(PullError) as err:
        pull("openai", [AUG1], environ={"OPENAI_ADMIN_KEY": KEY}, base_url=base(server), clock=waits.clock,
             sleep=waits.sleep, config=ReconcileConfig(max_retries=2), kinds=["openai.usage.completions"])
    assert str(err.value) == f"openai: GET {COMPLETIONS}: HTTP 500, 3 times: giving up"
    assert server.paths() == [COMPLETIONS] * 3 and waits.waits == [0.5, 1.0]


def test_one_deadline_for_the_whole_pull(server: AdminServer) -> None:
    server.script(COMPLETIONS, [(503, {}, b"")] * 10)
    waits = Waits()
    with pytest.raises(PullError) as err:
        pull("openai", [AUG1], environ={"OPENAI_ADMIN_KEY": KEY}, base_url=base(server), clock=waits.clock,
             sleep=waits.sleep, config=ReconcileConfig(deadline_seconds=5, max_retries=10),
             kinds=["openai.usage.completions"])
    assert waits.waits == [0.5, 1.0, 2.0]  # 3.5 s spent; the next 4 s wait would end past 5 s
    assert str(err.value) == f"openai: GET {COMPLETIONS}: HTTP 503: a retry in 4 s would pass the deadline (5 s)"


def test_a_retry_after_past_the_deadline_fails_at_once(server: AdminServer) -> None:
    server.script(COMPLETIONS, [(429, {"Retry-After": "3600"}, b"")])
    waits = Waits()
    with pytest.raises(PullError) as err:
        pull("openai", [AUG1], environ={"OPENAI_ADMIN_KEY": KEY}, base_url=base(server), clock=waits.clock,
             sleep=waits.sleep, kinds=["openai.usage.completions"])
    assert waits.waits == []
    assert str(err.value) == (f"openai: GET {COMPLETIONS}: HTTP 429 (rate limited): a retry in 3600 s would pass the "
                              "deadline (600 s)")


def test_a_timed_out_request_is_retried(server: AdminServer) -> None:
    server.route(COMPLETIONS, [load("openai_completions.json")])
    server.delay(COMPLETIONS, 2.0)  # the first answer comes after the client's 0.3 s timeout
    waits = Waits()
    export = pull("openai", [AUG1, AUG2], environ={"OPENAI_ADMIN_KEY": KEY}, base_url=base(server),
                  clock=waits.clock, sleep=waits.sleep, config=ReconcileConfig(timeout_seconds=0.3),
                  kinds=["openai.usage.completions"])
    assert len(export.lines) == 2 and waits.waits == [0.5] and server.paths() == [COMPLETIONS] * 2


def test_client_errors_are_not_retried_and_never_show_the_key(server: AdminServer) -> None:
    body = json.dumps({"error": {"message": "Incorrect API key provided: sk-admi*****6789.", "type": "invalid"}})
    server.script(COMPLETIONS, [(401, {}, body.encode())])
    with pytest.raises(PullError) as err:
        pull("openai", [AUG1], environ={"OPENAI_ADMIN_KEY": KEY}, base_url=base(server),
             kinds=["openai.usage.completions"])
    assert str(err.value) == f"openai: GET {COMPLETIONS}: HTTP 401: Incorrect API key provided: sk-admi*****6789."
    assert KEY not in str(err.value) and server.paths() == [COMPLETIONS]


def test_redirects_are_not_followed(server: AdminServer) -> None:
    server.script(COMPLETIONS, [(302, {"Location": "http://127.0.0.1:9/collect"}, b"")])
    with pytest.raises(PullError, match=f"^openai: GET {COMPLETIONS}: HTTP 302: "):
        pull("openai", [AUG1], environ={"OPENAI_ADMIN_KEY": KEY}, base_url=base(server),
             kinds=["openai.usage.completions"])
    assert server.paths() == [COMPLETIONS]


def test_a_5xx_retry_after_is_honoured(server: AdminServer) -> None:
    server.route(COMPLETIONS, [EMPTY_PAGE])
    server.script(COMPLETIONS, [(503, {"Retry-After": "7"}, b"")])
    waits = Waits()
    pull("openai", [AUG1], environ={"OPENAI_ADMIN_KEY": KEY}, base_url=base(server), clock=waits.clock,
         sleep=waits.sleep, kinds=["openai.usage.completions"])
    assert waits.waits == [7.0]


def test_bad_answers(server: AdminServer) -> None:
    server.script(COMPLETIONS, [(200, {}, b"<html>maintenance</html>")])
    with pytest.raises(PullError, match=f"openai: GET {COMPLETIONS}: the answer is not JSON"):
        pull("openai", [AUG1], environ={"OPENAI_ADMIN_KEY": KEY}, base_url=base(server),
             kinds=["openai.usage.completions"])
    page: Any = load("openai_completions.json")
    del page["data"][0]["results"][1]["output_tokens"]
    server.route(COMPLETIONS, [page])
    with pytest.raises(ReconcileError) as err:
        pull("openai", [AUG1, AUG2], environ={"OPENAI_ADMIN_KEY": KEY}, base_url=base(server),
             kinds=["openai.usage.completions"])
    assert str(err.value) == f"{base(server)}{COMPLETIONS} (page 1): data[0].results[1].output_tokens: missing"


def test_paging_that_does_not_advance_is_an_error(server: AdminServer) -> None:
    first, second = completions_in_two_pages()
    server.route(COMPLETIONS, [first, dict(second, has_more=True, next_page=first["next_page"])])  # type: ignore
    with pytest.raises(ReconcileError, match="next_page 'page_AAAAAGdGxdEiJdKOAAAAAGcqsYA=' repeats an earlier page"):
        pull("openai", [AUG1, AUG2], environ={"OPENAI_ADMIN_KEY": KEY}, base_url=base(server),
             kinds=["openai.usage.completions"])


def test_keys_and_base_urls_are_resolved_in_order(server: AdminServer) -> None:
    with pytest.raises(PullError) as err:
        pull("anthropic", [AUG1], environ={})
    assert str(err.value) == "anthropic: no admin key: set ANTHROPIC_ADMIN_API_KEY or ANTHROPIC_ADMIN_KEY"
    with pytest.raises(PullError, match="openai: no admin key: set OPENAI_ADMIN_KEY$"):
        pull("openai", [AUG1], environ={"OPENAI_API_KEY": "sk-not-admin"})
    with pytest.raises(PullError, match="unknown provider 'mistral'"):
        pull("mistral", [AUG1], environ={})
    server.route(COMPLETIONS, [EMPTY_PAGE])
    dead = "http://127.0.0.1:9"  # nothing listens on the discard port
    config = ReconcileConfig.model_validate({"providers": {"openai": {"base_url": dead, "key_env": "ACME_OPENAI"}}})
    env = {"ACME_OPENAI": KEY, "GENAI_METER_RECONCILE_OPENAI_URL": base(server)}
    pull("openai", [AUG1], config=config, environ=env, kinds=["openai.usage.completions"])  # the env URL wins
    config = ReconcileConfig.model_validate({"providers": {"openai": {"base_url": base(server),
                                                                      "key_env": "ACME_OPENAI"}}})
    pull("openai", [AUG1], config=config, environ={"ACME_OPENAI": KEY}, kinds=["openai.usage.completions"])
    assert server.paths() == [COMPLETIONS] * 2
    assert [h["authorization"] for _, _, h in server.requests] == [f"Bearer {KEY}"] * 2
    with pytest.raises(PullError, match="no admin key: set ACME_OPENAI$"):
        pull("openai", [AUG1], config=config, environ={"OPENAI_ADMIN_KEY": KEY})


def test_retry_after_reads_seconds_and_http_dates() -> None:
    message = Message()
    message["Retry-After"] = "Wed, 06 Aug 2025 10:00:30 GMT"
    assert retry_after(message, now=datetime(2025, 8, 6, 10, 0, tzinfo=UTC)) == 30.0
    message.replace_header("Retry-After", " 12 ")
    assert retry_after(message) == 12.0
    message.replace_header("Retry-After", "soon")
    assert retry_after(message) is None and retry_after(None) is None
    assert [backoff(n) for n in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_refused_connection_is_retried_then_reported() -> None:
    waits = Waits()
    with pytest.raises(PullError) as err:
        pull("openai", [AUG1], environ={"OPENAI_ADMIN_KEY": KEY}, base_url="http://127.0.0.1:9", clock=waits.clock,
             sleep=waits.sleep, config=ReconcileConfig(max_retries=1), kinds=["openai.usage.completions"])
    assert str(err.value).startswith(f"openai: GET {COMPLETIONS}: cannot connect (")
    assert str(err.value).endswith(", 2 times: giving up") and waits.waits == [0.5]
