"""`genai-meter demo`: the whole stack on this machine, without Docker.

Starts, all on 127.0.0.1: `genai-meter serve` writing the demo's own ledger (`ledger.db` in the
work dir), `genai-meter reports` serving the web page on that ledger (its URL is printed first),
Prometheus with the generated recording and alerting rules, Alertmanager with the generated
routes, a webhook receiver that prints the alerts it gets, and synthetic LLM traffic sent as real
OTLP spans (organizations, customers, users, features, conversations of several turns). Grafana
is not on bare machines: the generated dashboards are in deploy/grafana/dashboards/ for
`docker compose up` or an import.

Before anything starts, ~30 days of synthetic history (services `synthetic-*`, environment
`synthetic`; stack.seed) are written into the ledger, once, so that the page's charts, forecasts
and budgets have something to show at once. Without budgets of its own, the config gets a daily
demo budget on the live services only, sized from the traffic rate (stack.budget): its first
threshold alert reaches the webhook about two minutes after the start.

Runs until SIGINT/SIGTERM (or `--duration`). Then, within 15 s of the first signal: the traffic
stops and flushes, the summary is read from Prometheus and the ledger while they still run, every child gets
SIGTERM (SIGKILL at the bound), the webhook closes and a temporary work dir is removed. A signal
more than a second after the first skips the waits (several at once count as one). Signals are
only counted in their handler (stack.processes), so any number of them, at once or later, is
safe. A listen address in use is reported with the flag that changes it before anything starts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from genai_meter.config import Config, ConfigError
from genai_meter.contract import MetricNames
from genai_meter.generate import build_files
from genai_meter.money import from_pico
from genai_meter.promql.names import RECONCILIATION_SCRAPE_JOB, REPORTS_SCRAPE_JOB, SCRAPE_JOB
from genai_meter.stack.budget import with_demo_budget
from genai_meter.stack.processes import LISTEN_FLAGS, Stack, StopSignals, busy_port
from genai_meter.stack.seed import LedgerTotals, ledger_totals, seed_history
from genai_meter.stack.traffic import Traffic
from genai_meter.stack.webhook import AlertPrinter, Webhook

PROMETHEUS = "prometheus"
ALERTMANAGER = ("prometheus-alertmanager", "alertmanager")
WEBHOOK_LISTEN = "127.0.0.1:9099"  # where the generated Alertmanager config sends alerts
STOP_BOUND_S = 15.0  # everything is gone this long after the first signal
SCRAPE_INTERVAL_S = 5.0
__all__ = ["AlertPrinter", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, help="working directory (default: a new temporary one, removed at exit)")
    parser.add_argument("--duration", type=float, default=0, help="stop after SECONDS (default: run until Ctrl-C)")
    parser.add_argument("--rate", type=float, default=10.0, help="synthetic LLM calls per second (default 10)")
    parser.add_argument("--reports-listen", default="127.0.0.1:8080", metavar="HOST:PORT",
                        help="the web page (genai-meter reports; default 127.0.0.1:8080)")
    parser.add_argument("--grpc-listen", default="127.0.0.1:4317", metavar="HOST:PORT")
    parser.add_argument("--http-listen", default="127.0.0.1:4318", metavar="HOST:PORT")
    parser.add_argument("--metrics-listen", default="127.0.0.1:9464", metavar="HOST:PORT")
    parser.add_argument("--prometheus-listen", default="127.0.0.1:9090", metavar="HOST:PORT")
    parser.add_argument("--alertmanager-listen", default="127.0.0.1:9093", metavar="HOST:PORT")
    parser.add_argument("--webhook-listen", default=WEBHOOK_LISTEN, metavar="HOST:PORT")


def demo_config(config: Config, rate: float, workdir: Path) -> Config:
    """The user's config made self-contained for the demo's `serve` and `reports`: the demo budget
    when it has no budget of its own, paths made absolute, the ledger in the work dir
    (`ledger_url(workdir)`), calendar ranges in UTC unless configured, and no wait for a last scrape
    on shutdown (the demo stops Prometheus itself)."""
    config = with_demo_budget(config, rate)
    pricing, server, reports = config.pricing, config.server, config.reports
    if pricing.overrides is not None:
        pricing = pricing.model_copy(update={"overrides": config.resolve_path(pricing.overrides)})
    update: dict[str, Any] = {"shutdown_scrape_wait_seconds": 0}
    for key in ("auth_tokens_file", "tls_cert_file", "tls_key_file"):
        value = getattr(server, key)
        if value is not None:
            update[key] = config.resolve_path(value)
    ledger = config.ledger.model_copy(update={"url": ledger_url(workdir), "data_dir": None})
    if reports.tokens_file is not None:
        reports = reports.model_copy(update={"tokens_file": config.resolve_path(reports.tokens_file)})
    if reports.utc_offset is None:  # else the demo budget's offset (noon now) would shift "today"
        reports = reports.model_copy(update={"utc_offset": "+00:00"})
    return config.model_copy(update={"pricing": pricing, "server": server.model_copy(update=update),
                                     "ledger": ledger, "reports": reports})


def ledger_url(workdir: Path) -> str:
    """The demo's own ledger: `ledger.db` in its work dir."""
    return f"sqlite:///{(workdir / 'ledger.db').absolute()}"


def write_artifacts(config: Config, out: Path, args: argparse.Namespace) -> Path:
    """Generate dashboards, rules and configs into `out`; returns the local Prometheus config path."""
    for relative, text in build_files(config).items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    prometheus_yml = out / "prometheus" / "prometheus.local.yml"
    settings = yaml.safe_load(prometheus_yml.read_text())
    settings["global"]["evaluation_interval"] = "15s"  # alerts show up faster in a short demo
    settings["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [args.alertmanager_listen]}]}]
    targets = {SCRAPE_JOB: args.metrics_listen, REPORTS_SCRAPE_JOB: args.reports_listen,
               RECONCILIATION_SCRAPE_JOB: args.reports_listen}
    for job in settings["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets.get(job["job_name"], args.prometheus_listen)]}]
        if job["job_name"] != RECONCILIATION_SCRAPE_JOB:  # daily figures: its own slow interval
            job["scrape_interval"] = f"{SCRAPE_INTERVAL_S:.0f}s"
    prometheus_yml.write_text(yaml.safe_dump(settings, sort_keys=False))
    alertmanager_yml = out / "alertmanager" / "alertmanager.yml"
    alertmanager_yml.write_text(alertmanager_yml.read_text().replace(WEBHOOK_LISTEN, args.webhook_listen))
    return prometheus_yml


def wait_http(url: str, stack: Stack, signals: StopSignals, timeout: float = 60.0) -> bool:
    """Poll `url` until it answers 200 (bounded): True; False when a stop signal came first.
    Raises RuntimeError if a process died or the time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not signals.stopping:
        stack.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return True
        except OSError:
            pass
        signals.sleep(0.3)
    if signals.stopping:
        return False
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def find_binary(*names: str) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


def query(prometheus: str, expr: str, timeout: float = 2.0) -> float | None:
    url = f"http://{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            result = json.load(answer)["data"]["result"]
    except (OSError, ValueError, KeyError):
        return None
    return float(result[0]["value"][1]) if result else 0.0  # no series yet: nothing counted


def take_summary(prometheus: str, names: MetricNames, traffic: Traffic, ledger: LedgerTotals | None) -> str:
    """The summary lines, read from Prometheus (which must still be running) and the ledger."""
    cost = query(prometheus, f"sum({names.cost})")
    requests = query(prometheus, f"sum({names.requests})") if cost is not None else None
    unpriced = query(prometheus, f"sum({names.unpriced})") if cost is not None else None
    if cost is None:
        line = f"\nsummary: {traffic.sent} calls sent; Prometheus did not answer, no totals"
    else:
        line = (f"\nsummary: {traffic.sent} calls sent; Prometheus saw {requests or 0:.0f} requests, "
                f"total cost ${cost:.4f}, {unpriced or 0:.0f} unpriced")
    if ledger is None:
        return line + "\n  ledger: could not be read"
    return (line + f"\n  ledger: {ledger.live_calls} live calls, total cost "
            f"${from_pico(ledger.live_cost_pico).quantize(Decimal('0.0001'))}; "
            f"{ledger.synthetic_calls} synthetic history calls")


def run(args: argparse.Namespace, config: Config) -> int:
    """`genai-meter demo`: returns 0 after a stop by signal or --duration, 1 if a process failed."""
    prometheus_bin = find_binary(PROMETHEUS)
    alertmanager_bin = find_binary(*ALERTMANAGER)
    if prometheus_bin is None or alertmanager_bin is None:
        raise ConfigError("the demo needs the Debian packages prometheus and prometheus-alertmanager "
                          "(`make demo` installs them)")
    if args.rate <= 0 or args.duration < 0:
        raise ConfigError("--rate must be above 0 and --duration at least 0")
    problem = busy_port({name: getattr(args, name) for name in LISTEN_FLAGS})
    if problem is not None:
        raise ConfigError(problem)
    signals = StopSignals()
    signals.install()  # from here on a signal only counts; the stop below is bounded
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="genai-meter-demo-"))
    try:
        return _run(args, config, workdir, signals, prometheus_bin, alertmanager_bin)
    finally:
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        # the handlers stay: a signal still on its way (make, timeout) must not kill the exit


def _run(args: argparse.Namespace, config: Config, workdir: Path, signals: StopSignals, prometheus_bin: str,
         alertmanager_bin: str) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    config = demo_config(config, args.rate, workdir)
    config_file = workdir / "genai-meter.yaml"
    config_file.write_text(yaml.safe_dump(json.loads(config.model_dump_json(exclude_defaults=True))))
    prometheus_yml = write_artifacts(config, workdir / "deploy", args)
    ledger = ledger_url(workdir)
    host, _, port = args.webhook_listen.rpartition(":")
    try:
        webhook = Webhook(host.strip("[]"), int(port))
    except OSError as exc:
        raise ConfigError(f"{args.webhook_listen} (the alert webhook): {exc.strerror}; choose another port with "
                          "--webhook-listen HOST:PORT") from None
    stack = Stack(workdir)
    traffic: Traffic | None = None
    code = 0
    seeded = 0
    live_since_ns = 0
    try:
        stack.spawn("prometheus", [prometheus_bin, f"--config.file={prometheus_yml}",
                                   f"--web.listen-address={args.prometheus_listen}",
                                   f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                                   "--storage.tsdb.retention.time=190d"])
        alertmanager_yml = workdir / "deploy/alertmanager/alertmanager.yml"
        stack.spawn("alertmanager", [alertmanager_bin, f"--config.file={alertmanager_yml}",
                                     f"--web.listen-address={args.alertmanager_listen}",
                                     f"--storage.path={workdir / 'alertmanager-data'}", "--cluster.listen-address="])
        # while those start: the history, before serve writes live calls (a few seconds, once per ledger)
        seeded = 0 if signals.stopping else seed_history(ledger, config)
        stack.spawn("genai-meter", [sys.executable, "-m", "genai_meter", "serve", "--config", str(config_file),
                                    "--grpc-listen", args.grpc_listen, "--http-listen", args.http_listen,
                                    "--metrics-listen", args.metrics_listen, "--ledger", ledger])
        stack.spawn("reports", [sys.executable, "-m", "genai_meter", "reports", "--config", str(config_file),
                                "--ledger", ledger, "--listen", args.reports_listen])
        if (wait_http(f"http://{args.metrics_listen}/readyz", stack, signals)
                and wait_http(f"http://{args.prometheus_listen}/-/ready", stack, signals)
                and wait_http(f"http://{args.alertmanager_listen}/-/ready", stack, signals)
                and wait_http(f"http://{args.reports_listen}/api/v1/health", stack, signals)):
            traffic = Traffic(f"http://{args.http_listen}/v1/traces", rate=args.rate)
            live_since_ns = time.time_ns() - 10**9  # live spans end when they are sent: from now on
            traffic.start()
            print(banner(args, config, workdir, seeded), flush=True)
            deadline = time.monotonic() + args.duration if args.duration else None
            while not signals.stopping and (deadline is None or time.monotonic() < deadline):
                stack.check_alive()
                signals.sleep(1.0)
    except RuntimeError as exc:
        print(f"genai-meter demo: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        stop_by = (signals.first_at or time.monotonic()) + STOP_BOUND_S - 2.0  # 2 s for the webhook and files
        try:
            if traffic is not None:
                traffic.stop(timeout_s=min(3.0, max(0.0, stop_by - time.monotonic() - 8.0)))
                if not signals.hurry:  # one more scrape, so the summary includes the last calls
                    signals.sleep(min(SCRAPE_INTERVAL_S + 0.5, max(0.0, stop_by - time.monotonic() - 4.0)))
                # taken before anything stops: Prometheus still answers
                summary = take_summary(args.prometheus_listen, MetricNames(config.metric_prefix), traffic,
                                       ledger_totals(ledger, config, live_since_ns))
                try:
                    print(summary, flush=True)
                except OSError:  # stdout gone (a closed pipe, a lost terminal): the stop goes on
                    pass
        finally:
            try:
                stack.stop(max(stop_by, time.monotonic() + 1.0), hurry=lambda: signals.hurry)
            finally:
                webhook.close()
    return code


def banner(args: argparse.Namespace, config: Config, workdir: Path, seeded: int) -> str:
    budget = config.budgets[0]
    limit = f"${budget.limit_usd}" if budget.limit_usd is not None else f"{budget.limit_tokens} tokens"
    history = f"{seeded} synthetic calls of history written" if seeded else "synthetic history already there"
    return (f"genai-meter demo running (files and logs in {workdir})\n"
            f"  web page        http://{args.reports_listen}/  (the ledger: {history}, then live calls)\n"
            f"  OTLP            grpc://{args.grpc_listen}  http://{args.http_listen}/v1/traces\n"
            f"  metrics         http://{args.metrics_listen}/metrics\n"
            f"  Prometheus      http://{args.prometheus_listen}  (rules and alerts loaded)\n"
            f"  Alertmanager    http://{args.alertmanager_listen}  (alerts printed below)\n"
            f"  dashboards      {workdir / 'deploy/grafana/dashboards'} (Grafana: docker compose up)\n"
            f"  budget          {budget.name}: {limit} per {budget.period}, alerts at "
            f"{', '.join(f'{t}%' for t in budget.thresholds)}\n"
            f"Sending {args.rate:g} synthetic LLM calls/s. Ctrl-C to stop.")
