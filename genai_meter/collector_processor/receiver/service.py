"""`genai-meter serve`: OTLP/gRPC and OTLP/HTTP receivers plus the Prometheus endpoint.

`add_arguments(parser)` and `run(args, config) -> int` are what cli.py calls. With `--workers 1`
(the default) everything runs in this process (`Service`); with more, collector_processor.workers
runs one receiving process per worker and this process serves /metrics (docs/scaling.md).

Start-up logs one line per listener, `genai-meter: <name> listening on <host:port>` (names
`otlp-grpc`, `otlp-http`, `metrics`), then `genai-meter: ready`; /readyz answers 200 from then on,
except while the ledger cannot write (its commits fail, or its file is gone: 503 until it recovers).

Shutdown on SIGTERM or SIGINT (docs/receiver.md): /readyz turns 503 and the receivers refuse new
requests (503 + Retry-After, UNAVAILABLE); requests in flight finish (bounded by
`request_timeout_seconds`); the forward queue is flushed (same bound); /metrics stays up until a
scrape that began after the last span was counted has been answered (bounded by
`shutdown_scrape_wait_seconds`, 0 = no wait; a second signal cuts the wait short); then the
listeners close and the process exits 0.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from genai_meter.collector_processor.metering import tally
from genai_meter.collector_processor.receiver import spans
from genai_meter.collector_processor.receiver.lifecycle import (
    ScrapeWatch,
    ShutdownSignals,
    final_scrape,
    log_listening,
    setup_logging,
)
from genai_meter.collector_processor.receiver.receivers import LISTENER_STOP_GRACE_S, Receivers
from genai_meter.collector_processor.receiver.workers import Supervisor
from genai_meter.config import Config, ConfigError, LedgerConfig
from genai_meter.exporters import group_add
from genai_meter.exporters.endpoint import start_metrics_server
from genai_meter.exporters.httpd import HttpServer, format_address, parse_listen
from genai_meter.ledger import LedgerOpenError, LedgerUrlError, check_url, migrate, resolve_url

log = logging.getLogger("genai_meter")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `serve` flags; each overrides the `server:` setting of the same name."""
    parser.add_argument("--grpc-listen", metavar="HOST:PORT", help="OTLP/gRPC address (default 127.0.0.1:4317)")
    parser.add_argument("--http-listen", metavar="HOST:PORT", help="OTLP/HTTP address (default 127.0.0.1:4318)")
    parser.add_argument("--metrics-listen", metavar="HOST:PORT",
                        help="Prometheus /metrics address (default 127.0.0.1:9464)")
    parser.add_argument("--forward-endpoint", metavar="URL",
                        help="send received spans on to this OTLP/HTTP traces URL, cost attributes added")
    parser.add_argument("--workers", type=int, metavar="N", help="receiving processes (default 1)")
    parser.add_argument("--ledger", metavar="URL",
                        help="where every call is stored: sqlite:///PATH, clickhouse://..., or none "
                             "(default: $GENAI_METER_LEDGER, ledger.url, else SQLite under the data directory)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="data directory of the embedded ledger (default: $GENAI_METER_DATA_DIR, "
                             "else $XDG_STATE_HOME/genai-meter)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log verbosity (default INFO)")


def apply_overrides(config: Config, args: argparse.Namespace) -> Config:
    """The config with the command-line flags folded into `server`; raises ConfigError."""
    update: dict[str, Any] = {}
    for flag in ("grpc_listen", "http_listen", "metrics_listen", "forward_endpoint", "workers"):
        value = getattr(args, flag, None)
        if value is not None:
            update[flag] = value
    server = config.server.model_copy(update=update)
    if server.workers < 1:
        raise ConfigError("--workers must be at least 1")
    for name in ("grpc_listen", "http_listen", "metrics_listen"):
        try:
            parse_listen(getattr(server, name))
        except ValueError as exc:
            raise ConfigError(f"server.{name}: {exc}") from None
    return config.model_copy(update={"server": server, "ledger": resolved_ledger(config, args)})


def resolved_ledger(config: Config, args: argparse.Namespace) -> LedgerConfig:
    """`ledger` with `url` resolved (flag, environment, config, else SQLite under the data dir; None = off)."""
    ledger = config.ledger
    data_dir = getattr(args, "data_dir", None)
    if data_dir:
        ledger = ledger.model_copy(update={"data_dir": Path(data_dir)})
    url = resolve_url(config.model_copy(update={"ledger": ledger}), getattr(args, "ledger", None))
    if url is not None:
        try:
            check_url(url)
        except LedgerUrlError as exc:
            raise ConfigError(str(exc)) from None
    return ledger.model_copy(update={"url": url})


def run(args: argparse.Namespace, config: Config) -> int:
    """`genai-meter serve`: returns the exit code (0 after a graceful shutdown)."""
    config = apply_overrides(config, args)
    setup_logging(getattr(args, "log_level", "INFO") or "INFO")
    url = config.ledger.url
    if url is None:
        log.info("genai-meter: ledger off (--ledger none): reports and the activity feed have no data")
    else:
        try:
            migrate(url, config)  # once, here: workers and readers never migrate
        except LedgerOpenError as exc:
            log.error("genai-meter: cannot open the ledger: %s", exc)
            return 1
        log.info("genai-meter: ledger %s", url)
    if config.server.workers > 1:
        return Supervisor(config).run()
    service = Service(config)
    service.signals.install()  # before "ready" is logged: a signal right after it must shut down cleanly
    try:
        service.start()
    except (OSError, RuntimeError) as exc:
        log.error("genai-meter: cannot start: %s", exc)
        service.stop_all()
        return 1
    return service.run_until_signal()


def hot_path() -> str:
    """Which parts of the per-span work run in C (docs/performance.md), for the start-up log."""
    parts = {"span extraction": spans.ACCELERATED, "bulk counting": tally.ACCELERATED,
             "series additions": group_add.ACCELERATED}
    compiled = [name for name, on in parts.items() if on]
    if not compiled:
        return "pure Python (the C accelerator is not built, or GENAI_METER_ACCELERATOR=off)"
    return "C accelerator for " + ", ".join(compiled) + "; Python for the rest"


class Service:
    """Single-process `serve`: receivers and /metrics in this process."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.signals = ShutdownSignals()
        self.watch = ScrapeWatch()
        self.receivers: Receivers | None = None
        self.metrics_server: HttpServer | None = None
        self._ready = False

    def ready(self) -> bool:
        """/readyz: every listener up, not shutting down, and the ledger able to write."""
        return self._ready and self.receivers is not None and self.receivers.taking_spans \
            and self.receivers.ledger_ready()

    def start(self) -> None:
        self.receivers = Receivers(self.config)
        self.metrics_server = start_metrics_server(
            self.receivers, self.config.server.metrics_listen, ready=self.ready,
            on_scrape=self.watch.on_scrape)
        host, _ = parse_listen(self.config.server.metrics_listen)
        log_listening("metrics", format_address(host, self.metrics_server.address[1]))
        for name, address in self.receivers.start().items():
            log_listening(name, address)
        self._ready = True
        log.info("genai-meter: hot path: %s", hot_path())
        log.info("genai-meter: ready")

    def run_until_signal(self) -> int:
        """Wait for SIGTERM/SIGINT (handlers installed by the caller before `start`), then shut down."""
        self.signals.stop.wait()
        return self.shutdown()

    def shutdown(self) -> int:
        """The graceful shutdown sequence (module docstring); returns 0."""
        self._ready = False
        if self.receivers is not None:
            self.receivers.drain()
        counted_until = time.monotonic()
        if self.metrics_server is not None:
            final_scrape(self.watch, counted_until, self.config.server.shutdown_scrape_wait_seconds, self.signals.hurry)
        self.stop_all()
        log.info("genai-meter: stopped")
        return 0

    def stop_all(self) -> None:
        if self.receivers is not None:
            self.receivers.stop()
        if self.metrics_server is not None:
            self.metrics_server.stop(LISTENER_STOP_GRACE_S)
            self.metrics_server = None
