"""The counting half of `serve`: metrics store, pipeline, dedup, forwarder and both OTLP listeners."""

from __future__ import annotations

import logging
import os
import re

from genai_meter import contract
from genai_meter.collector_processor.forwarding.forwarder import Forwarder
from genai_meter.collector_processor.metering import build_meter
from genai_meter.collector_processor.receiver.auth import TokenAuth, server_ssl_context, tls_files
from genai_meter.collector_processor.receiver.dedup import SeenSpans
from genai_meter.collector_processor.receiver.gate import Gate
from genai_meter.collector_processor.receiver.ingest import Dedup, Ingestor
from genai_meter.collector_processor.receiver.otlp_grpc import GrpcReceiver
from genai_meter.collector_processor.receiver.otlp_http import OtlpHttpHandler
from genai_meter.config import Config, ConfigError
from genai_meter.exporters import UsageMetrics
from genai_meter.exporters.httpd import HttpServer, Limits, format_address, listen_socket, parse_listen
from genai_meter.ledger import LedgerWriter, open_writer
from genai_meter.money import from_pico

log = logging.getLogger("genai_meter")

HEAD_TIMEOUT_S = 10.0  # a request head (line + headers) must arrive within this of its first byte
IDLE_TIMEOUT_S = 60.0  # an idle keep-alive connection is closed after this
LISTENER_STOP_GRACE_S = 2.0  # calls already past the gate get this long when a listener closes


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
                 metrics: UsageMetrics | None = None) -> None:
        self.config = config
        server = config.server
        self.auth = TokenAuth.from_config(server, config.resolve_path)
        self.tls = tls_files(server, config.resolve_path)
        self.metrics = metrics if metrics is not None else UsageMetrics(config, serve=True)
        self.meter = build_meter(config, [self.metrics])
        self.dedup = dedup if dedup is not None else SeenSpans(config.limits.dedup_window_seconds,
                                                               config.limits.dedup_max_entries)
        self.forwarder = None
        if server.forward_endpoint:
            try:
                self.forwarder = Forwarder(config, self.metrics, headers=forward_headers(server.forward_headers))
            except ValueError as exc:
                raise ConfigError(f"server.forward_endpoint: {exc}") from None
        self.gate = Gate(server.max_concurrent_requests)
        # the ledger: `ledger.url` holds the resolved URL (service.apply_overrides); None = --ledger none
        self.ledger: LedgerWriter | None = open_writer(config.ledger.url, config) if config.ledger.url else None
        self.ingestor = Ingestor(self.meter, self.metrics, self.dedup, forwarder=self.forwarder, ledger=self.ledger,
                                 commit_timeout_s=server.request_timeout_seconds)
        self.reuse_port = reuse_port
        self.http: HttpServer | None = None
        self.grpc: GrpcReceiver | None = None
        self.addresses: dict[str, str] = {}

    def refresh_self_gauges(self) -> None:
        """Bring the ledger's self-metric gauges up to date (called before each render)."""
        if self.ledger is None:
            return
        self.metrics.set_self_gauge(contract.SELF_LEDGER_DIFFERENCE,
                                    float(from_pico(self.ingestor.reconcile.difference_pico)))
        wal_bytes = getattr(self.ledger, "wal_bytes", None)  # SQLite only
        if wal_bytes is not None:
            self.metrics.set_self_gauge(contract.SELF_LEDGER_WAL_BYTES, float(wal_bytes()))

    def render(self, openmetrics: bool) -> bytes:
        """The /metrics body of this process's store, self gauges refreshed."""
        self.refresh_self_gauges()
        return self.metrics.render(openmetrics)

    def start(self) -> dict[str, str]:
        """Bind and start both listeners (and the forwarder); returns name -> 'host:port'."""
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

    def ledger_ready(self) -> bool:
        """Whether the ledger can store calls now (no ledger: True); /readyz follows it."""
        return self.ledger is None or self.ledger.healthy()

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
        if self.ledger is not None:
            self.ledger.close()
        close = getattr(self.meter.prices, "close", None)
        if close is not None:
            close()
