"""`genai-meter serve`: OTLP/gRPC and OTLP/HTTP receivers plus the Prometheus endpoint.

`add_arguments(parser)` and `run(args, config) -> int` are what cli.py calls. With `--workers 1`
(the default) everything runs in this process (`Service`); with more, collector_processor.workers
runs one receiving process per worker and this process serves /metrics (docs/scaling.md).

Start-up logs one line per listener, `genai-meter: <name> listening on <host:port>` (names
`otlp-grpc`, `otlp-http`, `metrics`), then `genai-meter: ready`; /readyz answers 200 from then on.

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
import os
import re
import signal
import sys
import threading
import time
from typing import Any

from genai_meter.collector_processor.auth import TokenAuth, server_ssl_context, tls_files
from genai_meter.collector_processor.dedup import SeenSpans
from genai_meter.collector_processor.httpd import HttpServer, Limits, format_address, listen_socket, parse_listen
from genai_meter.collector_processor.ingest import Dedup, Gate, Ingestor, build_meter
from genai_meter.collector_processor.metrics_http import start_metrics_server
from genai_meter.collector_processor.otlp_http import OtlpHttpHandler
from genai_meter.config import Config, ConfigError

log = logging.getLogger("genai_meter")

HEAD_TIMEOUT_S = 10.0  # a request head (line + headers) must arrive within this of its first byte
IDLE_TIMEOUT_S = 60.0  # an idle keep-alive connection is closed after this
LISTENER_STOP_GRACE_S = 2.0  # calls already past the gate get this long when a listener closes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `serve` flags; each overrides the `server:` setting of the same name."""
    parser.add_argument("--grpc-listen", metavar="HOST:PORT", help="OTLP/gRPC address (default 127.0.0.1:4317)")
    parser.add_argument("--http-listen", metavar="HOST:PORT", help="OTLP/HTTP address (default 127.0.0.1:4318)")
    parser.add_argument("--metrics-listen", metavar="HOST:PORT",
                        help="Prometheus /metrics address (default 127.0.0.1:9464)")
    parser.add_argument("--forward-endpoint", metavar="URL",
                        help="send received spans on to this OTLP/HTTP traces URL, cost attributes added")
    parser.add_argument("--workers", type=int, metavar="N", help="receiving processes (default 1)")
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
    return config.model_copy(update={"server": server})


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger("genai_meter")
    if not any(getattr(h, "_genai_meter", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._genai_meter = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def run(args: argparse.Namespace, config: Config) -> int:
    """`genai-meter serve`: returns the exit code (0 after a graceful shutdown)."""
    config = apply_overrides(config, args)
    setup_logging(getattr(args, "log_level", "INFO") or "INFO")
    if config.server.workers > 1:
        from genai_meter.collector_processor.workers import Supervisor

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


class ShutdownSignals:
    """SIGTERM/SIGINT -> `stop` event; a second signal sets `hurry` (skip the scrape wait)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.hurry = threading.Event()

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.stop.is_set():
            self.hurry.set()
        else:
            log.info("genai-meter: %s received, shutting down", signal.Signals(signum).name)
        self.stop.set()


class ScrapeWatch:
    """Remembers when the latest /metrics scrape began (monotonic seconds)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._latest = float("-inf")

    def on_scrape(self, started: float) -> None:
        with self._cond:
            self._latest = max(self._latest, started)
            self._cond.notify_all()

    def wait_after(self, since: float, timeout_s: float, hurry: threading.Event | None = None) -> bool:
        """Wait for a scrape that began at or after `since`; False when `timeout_s` passed first."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._latest < since:
                left = deadline - time.monotonic()
                if left <= 0 or (hurry is not None and hurry.is_set()):
                    return False
                self._cond.wait(min(left, 0.1))
            return True


def forward_headers(headers: dict[str, str]) -> dict[str, str]:
    """The configured forward headers with "${VAR}" replaced from the environment (secrets stay out of files)."""
    def expand(name: str, value: str) -> str:
        def lookup(match: re.Match[str]) -> str:
            try:
                return os.environ[match.group(1)]
            except KeyError:
                raise ConfigError(f"server.forward_headers.{name}: environment variable "
                                  f"{match.group(1)} is not set") from None
        return _ENV_REF.sub(lookup, value)

    return {name: expand(name, value) for name, value in headers.items()}


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Receivers:
    """The counting half of the service: metrics store, pipeline, OTLP/gRPC and OTLP/HTTP listeners.

    In worker mode each worker process holds one, with `reuse_port` and the parent's dedup set.
    """

    def __init__(self, config: Config, *, dedup: Dedup | None = None, reuse_port: bool = False,
                 metrics: Any = None) -> None:
        from genai_meter.exporters import UsageMetrics

        self.config = config
        server = config.server
        self.auth = TokenAuth.from_config(server, config.resolve_path)
        self.tls = tls_files(server, config.resolve_path)
        self.metrics = metrics if metrics is not None else UsageMetrics(config)
        self.meter = build_meter(config, self.metrics)
        self.dedup = dedup if dedup is not None else SeenSpans(config.limits.dedup_window_seconds,
                                                               config.limits.dedup_max_entries)
        self.forwarder = None
        if server.forward_endpoint:
            from genai_meter.collector_processor.forwarding import Forwarder

            try:
                self.forwarder = Forwarder(config, self.metrics, headers=forward_headers(server.forward_headers))
            except ValueError as exc:
                raise ConfigError(f"server.forward_endpoint: {exc}") from None
        self.gate = Gate(server.max_concurrent_requests)
        self.ingestor = Ingestor(self.meter, self.metrics, self.dedup, forwarder=self.forwarder)
        self.reuse_port = reuse_port
        self.http: HttpServer | None = None
        self.grpc: Any = None  # otlp_grpc.GrpcReceiver (grpc is imported only when serving)
        self.addresses: dict[str, str] = {}

    def start(self) -> dict[str, str]:
        """Bind and start both listeners (and the forwarder); returns name -> 'host:port'."""
        from genai_meter.collector_processor.otlp_grpc import GrpcReceiver

        server = self.config.server
        if self.forwarder is not None:
            self.forwarder.start()
        self.grpc = GrpcReceiver(self.ingestor, self.gate, self.auth, server.grpc_listen,
                                 max_message_bytes=server.max_body_bytes,
                                 threads=min(server.max_concurrent_requests, 64), tls=self.tls,
                                 reuse_port=self.reuse_port)
        port = self.grpc.start()
        host, _ = parse_listen(server.grpc_listen)
        self.addresses["otlp-grpc"] = format_address(host, port)
        host, port = parse_listen(server.http_listen)
        sock = listen_socket(host, port, reuse_port=self.reuse_port)
        limits = Limits(max_body_bytes=server.max_body_bytes, head_timeout_s=min(HEAD_TIMEOUT_S,
                        server.request_timeout_seconds), body_timeout_s=server.request_timeout_seconds,
                        idle_timeout_s=IDLE_TIMEOUT_S)
        handler = OtlpHttpHandler(self.ingestor, self.gate, self.auth, max_body_bytes=server.max_body_bytes)
        self.http = HttpServer("otlp-http", sock, handler, limits=limits,
                               ssl_context=server_ssl_context(self.tls) if self.tls else None)
        self.http.start()
        self.addresses["otlp-http"] = format_address(host, self.http.address[1])
        return dict(self.addresses)

    @property
    def taking_spans(self) -> bool:
        return self.http is not None and self.grpc is not None and not self.gate.closed

    def drain(self) -> None:
        """Refuse new requests (the listeners stay up, answering 503 / UNAVAILABLE), finish those
        in flight, flush the forward queue (each bounded by `request_timeout_seconds`)."""
        bound = self.config.server.request_timeout_seconds
        self.gate.close()
        if not self.gate.wait_idle(bound):
            log.warning("genai-meter: %d request(s) still in flight after %.0f s", self.gate.inflight, bound)
        if self.forwarder is not None:
            self.forwarder.shutdown(bound)

    def stop(self) -> None:
        """Close both listeners (after `drain`). Idempotent."""
        self.gate.close()
        if self.grpc is not None:
            self.grpc.stop(LISTENER_STOP_GRACE_S)
            self.grpc = None
        if self.http is not None:
            self.http.stop(LISTENER_STOP_GRACE_S)
            self.http = None
        close = getattr(self.meter.prices, "close", None)
        if close is not None:
            close()


def log_listening(name: str, address: str) -> None:
    log.info("genai-meter: %s listening on %s", name, address)


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
        return self._ready and self.receivers is not None and self.receivers.taking_spans

    def start(self) -> None:
        self.receivers = Receivers(self.config)
        self.metrics_server = start_metrics_server(
            self.receivers.metrics, self.config.server.metrics_listen, ready=self.ready,
            on_scrape=self.watch.on_scrape)
        host, _ = parse_listen(self.config.server.metrics_listen)
        log_listening("metrics", format_address(host, self.metrics_server.address[1]))
        for name, address in self.receivers.start().items():
            log_listening(name, address)
        self._ready = True
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
        wait_s = self.config.server.shutdown_scrape_wait_seconds
        if wait_s > 0 and self.metrics_server is not None:
            if self.watch.wait_after(counted_until, wait_s, self.signals.hurry):
                log.info("genai-meter: final scrape answered")
            else:
                log.warning("genai-meter: no scrape within %.0f s of shutdown; exiting anyway", wait_s)
        self.stop_all()
        log.info("genai-meter: stopped")
        return 0

    def stop_all(self) -> None:
        if self.receivers is not None:
            self.receivers.stop()
        if self.metrics_server is not None:
            self.metrics_server.stop(LISTENER_STOP_GRACE_S)
            self.metrics_server = None
