"""The demo's parts without the stack: the ledger's seeded history (written once, marked synthetic),
the live traffic's attribution and conversations, the web page's port flag. Real SQLite files."""

from __future__ import annotations

import argparse
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import yaml

from genai_meter.config import Config
from genai_meter.ledger import open_reader
from genai_meter.stack.demo import add_arguments, write_artifacts
from genai_meter.stack.processes import busy_port
from genai_meter.stack.seed import has_synthetic, ledger_totals, seed_history
from genai_meter.stack.traffic import CHAT_TURNS, MODELS, ORGANIZATIONS, Traffic
from genai_meter.stack.webhook import alert_line
from tests.support.prometheus import promtool

NS = 10**9


def test_the_history_is_written_once_marked_synthetic_and_counted_apart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    config = Config()
    now = time.time_ns()
    written = seed_history(url, config, days=3, now_ns=now)
    assert written > 300 and has_synthetic(url, config)
    assert seed_history(url, config, days=3, now_ns=now + 60 * NS) == 0  # already there: skipped
    reader = open_reader(url, config)
    try:
        (everything,) = reader.totals(0, now + NS, {})
        services = reader.dimension_values("service", 0, now + NS, {})
        environments = reader.dimension_values("environment", 0, now + NS, {})
        first = reader.coverage().first_ns
    finally:
        reader.close()
    assert everything.calls == written and everything.cost_total_pico > 0
    assert services == ["synthetic-web", "synthetic-worker"] and environments == ["synthetic"]
    assert first is not None and now - first > 2 * 86400 * NS  # the days before now
    totals = ledger_totals(url, config)
    assert totals is not None
    assert (totals.live_calls, totals.live_cost_pico, totals.synthetic_calls) == (0, 0, written)


def test_ledger_totals_of_a_missing_ledger_is_none(tmp_path: Path) -> None:
    assert ledger_totals(f"sqlite:///{tmp_path / 'absent' / 'ledger.db'}", Config()) is None


def test_live_traffic_has_organizations_users_and_conversations_of_several_turns() -> None:
    traffic = Traffic("http://127.0.0.1:9/v1/traces", rate=10.0)  # nothing is sent: only the choices
    chats = [traffic.next_conversation() for _ in range(3000)]
    turns = Counter(chat.conversation_id for chat in chats if chat.conversation_id)
    assert len(turns) > 100 and min(turns.values()) >= 1 and max(turns.values()) <= CHAT_TURNS[1]
    assert sum(1 for n in turns.values() if n >= CHAT_TURNS[0]) > 0.9 * len(turns)  # several turns each
    for chat in chats:
        assert chat.customer in ORGANIZATIONS[chat.organization] and chat.user.startswith(chat.customer + "-user-")
        assert (chat.feature == "chat") == bool(chat.conversation_id)
    by_id: dict[str, set[tuple[str, str, str]]] = {}
    for chat in chats:
        by_id.setdefault(chat.conversation_id, set()).add((chat.customer, chat.user, chat.profile.model))
    assert all(len(who) == 1 for cid, who in by_id.items() if cid)  # one user and model per conversation
    models = Counter(chat.profile.model for chat in chats)  # uniform per call: the budget's sizing holds
    assert set(models) == {m.model for m in MODELS}
    assert max(models.values()) / min(models.values()) < 1.4, models
    traffic.stop(timeout_s=1.0)


def test_a_busy_web_page_port_names_its_flag() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        problem = busy_port({"reports_listen": address})
    assert problem is not None and address in problem and "--reports-listen" in problem, problem


def test_alert_lines_name_the_budget_and_its_threshold() -> None:
    line = alert_line({"status": "firing", "labels": {"severity": "info", "alertname": "LLMBudgetThresholdReached",
                                                      "budget": "demo-daily", "threshold": "25"},
                       "annotations": {"summary": "LLM budget demo-daily has passed an alert threshold."}})
    assert line == ("  alert firing   info     LLMBudgetThresholdReached demo-daily 25% — LLM budget demo-daily "
                    "has passed an alert threshold.\n")
    plain = alert_line({"status": "resolved", "labels": {"severity": "info", "alertname": "LLMWatchdog"}})
    assert plain == "  alert resolved info     LLMWatchdog — \n"


def test_make_demo_passes_args_on() -> None:
    """`make demo ARGS=...` hands its options to `genai-meter demo` (a dry run: nothing is installed or started)."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(["make", "--no-print-directory", "-n", "demo", "ARGS=--rate 5 --reports-listen 127.0.0.1:8081"], cwd=root,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].endswith("genai-meter demo --rate 5 --reports-listen 127.0.0.1:8081")


def test_the_demos_prometheus_scrapes_every_job_where_it_runs(tmp_path: Path) -> None:
    """The demo's Prometheus config passes promtool; the meter, the report service's self-metrics and its
    reconciliation gauges are scraped at the ports the demo was given (the gauges at their own interval)."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--reports-listen", "127.0.0.1:18081", "--metrics-listen", "127.0.0.1:19464"])
    config_file = write_artifacts(Config(), tmp_path, args)
    assert promtool("check", "config", str(config_file)).returncode == 0
    jobs = {job["job_name"]: job for job in yaml.safe_load(config_file.read_text())["scrape_configs"]}
    targets = {name: job["static_configs"][0]["targets"] for name, job in jobs.items()}
    assert targets["genai-meter"] == ["127.0.0.1:19464"]
    assert targets["genai-meter-reports"] == targets["genai-meter-reconciliation"] == ["127.0.0.1:18081"]
    assert jobs["genai-meter-reconciliation"]["scrape_interval"] == "5m"
    assert "authorization" not in jobs["genai-meter-reconciliation"]  # the demo's report service has no tokens
