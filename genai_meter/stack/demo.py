"""`genai-meter demo`: the whole stack on this machine, without Docker.

Starts, all on 127.0.0.1: `genai-meter serve`, Prometheus with the generated recording and alerting
rules, Alertmanager with the generated routes, a webhook receiver that prints the alerts it gets,
and synthetic LLM traffic sent as real OTLP spans. Runs until Ctrl-C (or `--duration`), prints a
summary from Prometheus, and stops every process it started. Grafana is not on bare machines: the
generated dashboards are in deploy/grafana/dashboards/ for `docker compose up` or an import.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from genai_meter.config import BudgetConfig, Config, ConfigError
from genai_meter.contract import MetricNames
from genai_meter.stack.traffic import Traffic
from genai_meter.generate import build_files

PROMETHEUS = "prometheus"
ALERTMANAGER = ("prometheus-alertmanager", "alertmanager")
WEBHOOK_LISTEN = "127.0.0.1:9099"  # where the generated Alertmanager config sends alerts
DEMO_BUDGET = {"name": "demo-daily", "period": "day", "limit_usd": "25"}  # crosses its thresholds in minutes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, help="working directory (default: a new temporary one, removed at exit)")
    parser.add_argument("--duration", type=float, default=0, help="stop after SECONDS (default: run until Ctrl-C)")
    parser.add_argument("--rate", type=float, default=10.0, help="synthetic LLM calls per second (default 10)")
    parser.add_argument("--grpc-listen", default="127.0.0.1:4317")
    parser.add_argument("--http-listen", default="127.0.0.1:4318")
    parser.add_argument("--metrics-listen", default="127.0.0.1:9464")
    parser.add_argument("--prometheus-listen", default="127.0.0.1:9090")
    parser.add_argument("--alertmanager-listen", default="127.0.0.1:9093")
    parser.add_argument("--webhook-listen", default=WEBHOOK_LISTEN)


def demo_config(config: Config) -> Config:
    """The user's config, plus a small daily budget so the demo shows budget alerts."""
    if config.budgets:
        return config
    return config.model_copy(update={"budgets": [BudgetConfig.model_validate(DEMO_BUDGET)]})


class AlertPrinter(BaseHTTPRequestHandler):
    """Alertmanager webhook receiver: prints one line per alert notification."""

    received: list[dict[str, Any]] = []
    lock = threading.Lock()  # one whole line per alert, whichever thread prints

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {}
        for alert in payload.get("alerts", []):
            labels = alert.get("labels", {})
            line = (f"  alert {alert.get('status', '?'):8} {labels.get('severity', ''):8} {labels.get('alertname', '')}"
                    f" {labels.get('budget', '')} — {alert.get('annotations', {}).get('summary', '')}\n")
            with self.lock:
                type(self).received.append(alert)
                sys.stdout.write(line)
                sys.stdout.flush()
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


class Stack:
    """The demo's processes; `stop()` ends every one it started, by PID."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.processes.append((name, process))

    def check_alive(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                log = (self.workdir / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{log}")

    def stop(self) -> None:
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _name, process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_http(url: str, stack: Stack, timeout: float = 30.0) -> None:
    """Poll `url` until it answers 200 (bounded); raise if a process died meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def find_binary(*names: str) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


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
    for job in settings["scrape_configs"]:
        target = args.metrics_listen if job["job_name"] == "genai-meter" else args.prometheus_listen
        job["static_configs"] = [{"targets": [target]}]
        job["scrape_interval"] = "5s"
    prometheus_yml.write_text(yaml.safe_dump(settings, sort_keys=False))
    alertmanager_yml = out / "alertmanager" / "alertmanager.yml"
    alertmanager_yml.write_text(alertmanager_yml.read_text().replace(WEBHOOK_LISTEN, args.webhook_listen))
    return prometheus_yml


def query(prometheus: str, expr: str) -> float | None:
    url = f"http://{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            result = json.load(answer)["data"]["result"]
    except (OSError, ValueError, KeyError):
        return None
    return float(result[0]["value"][1]) if result else None


def print_summary(prometheus: str, names: MetricNames, traffic: Traffic) -> None:
    cost = query(prometheus, f"sum({names.cost})")
    requests = query(prometheus, f"sum({names.requests})")
    unpriced = query(prometheus, f"sum({names.unpriced})")
    print(f"\nsummary: {traffic.sent} calls sent; Prometheus saw {requests or 0:.0f} requests, "
          f"total cost ${cost or 0:.4f}, {unpriced or 0:.0f} unpriced", flush=True)


def run(args: argparse.Namespace, config: Config) -> int:
    prometheus_bin = find_binary(PROMETHEUS)
    alertmanager_bin = find_binary(*ALERTMANAGER)
    if prometheus_bin is None or alertmanager_bin is None:
        raise ConfigError("the demo needs the Debian packages prometheus and prometheus-alertmanager "
                          "(`make demo` installs them)")
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="genai-meter-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.config and config.budgets:
        config_file = Path(args.config)
    else:  # the user's settings plus the demo budget, in a file `serve` can read
        config = demo_config(config)
        if config.pricing.overrides is not None:
            pricing = config.pricing.model_copy(update={"overrides": config.resolve_path(config.pricing.overrides)})
            config = config.model_copy(update={"pricing": pricing})
        config_file = workdir / "genai-meter.yaml"
        config_file.write_text(yaml.safe_dump(json.loads(config.model_dump_json(exclude_defaults=True))))
    prometheus_yml = write_artifacts(config, workdir / "deploy", args)

    host, port = args.webhook_listen.rsplit(":", 1)
    webhook = ThreadingHTTPServer((host, int(port)), AlertPrinter)
    threading.Thread(target=webhook.serve_forever, daemon=True).start()
    stack = Stack(workdir)
    traffic: Traffic | None = None
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        stack.spawn("genai-meter", [sys.executable, "-m", "genai_meter", "serve", "--config", str(config_file),
                                    "--grpc-listen", args.grpc_listen, "--http-listen", args.http_listen,
                                    "--metrics-listen", args.metrics_listen])
        stack.spawn("prometheus", [prometheus_bin, f"--config.file={prometheus_yml}",
                                   f"--web.listen-address={args.prometheus_listen}",
                                   f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                                   "--storage.tsdb.retention.time=190d"])
        stack.spawn("alertmanager", [alertmanager_bin, f"--config.file={workdir / 'deploy/alertmanager/alertmanager.yml'}",
                                     f"--web.listen-address={args.alertmanager_listen}",
                                     f"--storage.path={workdir / 'alertmanager-data'}", "--cluster.listen-address="])
        wait_http(f"http://{args.metrics_listen}/readyz", stack)
        wait_http(f"http://{args.prometheus_listen}/-/ready", stack)
        wait_http(f"http://{args.alertmanager_listen}/-/ready", stack)
        traffic = Traffic(f"http://{args.http_listen}/v1/traces", rate=args.rate)
        traffic.start()
        print(f"genai-meter demo running (files and logs in {workdir})\n"
              f"  OTLP            grpc://{args.grpc_listen}  http://{args.http_listen}/v1/traces\n"
              f"  metrics         http://{args.metrics_listen}/metrics\n"
              f"  Prometheus      http://{args.prometheus_listen}  (rules and alerts loaded)\n"
              f"  Alertmanager    http://{args.alertmanager_listen}  (alerts printed below)\n"
              f"  dashboards      {workdir / 'deploy/grafana/dashboards'} (Grafana: docker compose up)\n"
              f"Sending {args.rate:g} synthetic LLM calls/s. Ctrl-C to stop.", flush=True)
        deadline = time.monotonic() + args.duration if args.duration else None
        while not stopping.is_set() and (deadline is None or time.monotonic() < deadline):
            stack.check_alive()
            stopping.wait(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        if traffic is not None:
            traffic.stop()
            time.sleep(6)  # one more scrape, so the summary includes the last calls
            print_summary(args.prometheus_listen, MetricNames(config.metric_prefix), traffic)
        stack.stop()
        webhook.shutdown()
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0
