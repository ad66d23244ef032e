"""The Prometheus endpoint: `/metrics`, `/healthz`, `/readyz` (GET or HEAD).

`/metrics` renders OpenMetrics 1.0.0 when the Accept header prefers it (Prometheus 2.42 asks for it
first) and the classic text format 0.0.4 otherwise (exporters.negotiate), gzipped when the client
accepts gzip. `/healthz` is 200 while the process serves; `/readyz` is 200 while every listener is
up and the service takes spans, 503 before that and from the start of shutdown.

Every scrape is reported to `on_scrape(started_monotonic)` once its body is built, so shutdown can
wait for a scrape that began after the last span was counted. No auth, no TLS: bind it where only
Prometheus reaches it (docs/receiver.md).
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from genai_meter.exporters import content_type, negotiate
from genai_meter.exporters.httpd import HttpServer, Limits, Request, Response, listen_socket, parse_listen

log = logging.getLogger("genai_meter")

GZIP_MIN_BYTES = 1024  # smaller bodies go uncompressed even when gzip is accepted
HEAD_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 60.0


def accepts_gzip(accept_encoding: str) -> bool:
    """True if an Accept-Encoding header allows gzip (q > 0)."""
    for part in accept_encoding.split(","):
        fields = part.split(";")
        if fields[0].strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        q = 1.0
        for field in fields[1:]:
            key, _, value = field.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            return True
    return False


class MetricsHandler:
    """The `httpd` handler of the metrics listener.

    `render(openmetrics) -> bytes` builds the body (UsageMetrics.render, or the workers' merge);
    it runs on the listener's thread. `ready()` says whether /readyz is 200.
    """

    def __init__(self, render: Callable[[bool], bytes], ready: Callable[[], bool], *,
                 on_scrape: Callable[[float], None] | None = None) -> None:
        self.render = render
        self.ready = ready
        self.on_scrape = on_scrape

    async def __call__(self, request: Request, read_body: Callable[[], Awaitable[bytes]]) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n", headers=[("Allow", "GET, HEAD")])
        if request.path == "/metrics":
            return self._metrics(request)
        if request.path == "/healthz":
            return Response(200, b"ok\n")
        if request.path == "/readyz":
            if self.ready():
                return Response(200, b"ready\n")
            return Response(503, b"not ready\n")
        return Response(404, b"not found: try /metrics, /healthz or /readyz\n")

    def _metrics(self, request: Request) -> Response:
        started = time.monotonic()
        openmetrics = negotiate(request.header("accept") or None)
        try:
            body = self.render(openmetrics)
        except Exception:
            log.exception("genai-meter: /metrics could not be rendered")
            return Response(500, b"metrics could not be rendered\n")
        headers = [("Vary", "Accept, Accept-Encoding")]
        if len(body) >= GZIP_MIN_BYTES and accepts_gzip(request.header("accept-encoding")):
            body = gzip.compress(body, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        if self.on_scrape is not None and request.method == "GET":
            self.on_scrape(started)
        return Response(200, body, content_type(openmetrics), headers)


def start_metrics_server(metrics: Any, listen: str = "127.0.0.1:9464", *,
                         ready: Callable[[], bool] | None = None,
                         on_scrape: Callable[[float], None] | None = None) -> HttpServer:
    """Serve `metrics` (anything with `render(openmetrics) -> bytes`: a UsageMetrics, or the
    worker supervisor) on http://LISTEN from a daemon thread; `ready` drives /readyz (default:
    always ready). Returns the running server: `.address` is the bound (host, port), `.stop()`
    ends it. Raises OSError when LISTEN cannot be bound, ValueError when it is not HOST:PORT."""
    host, port = parse_listen(listen)
    handler = MetricsHandler(metrics.render, ready or (lambda: True), on_scrape=on_scrape)
    limits = Limits(max_body_bytes=64 * 1024, head_timeout_s=HEAD_TIMEOUT_S, body_timeout_s=HEAD_TIMEOUT_S,
                    idle_timeout_s=IDLE_TIMEOUT_S, max_connections=256)
    server = HttpServer("metrics", listen_socket(host, port), handler, limits=limits)
    server.start()
    return server
