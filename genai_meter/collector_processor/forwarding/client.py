"""One OTLP/HTTP endpoint over one keep-alive connection (standard library `http.client`; https with
the default SSL context unless one is given; HTTP(S)_PROXY variables are not read).

Owned by one thread (the forwarder's sender); only `abort` may be called from another thread.
"""

from __future__ import annotations

import http.client
import ssl
import time
from email.utils import parsedate_to_datetime
from typing import NamedTuple

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

MAX_RESPONSE_BYTES = 64 * 1024  # read at most this much of an answer; the connection is not reused past it
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})  # the OTLP/HTTP retryable answers

# Errors of a keep-alive connection that the server closed while idle: resent at once, fresh.
_STALE_CONNECTION_ERRORS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError,
                            http.client.RemoteDisconnected)


class Answer(NamedTuple):
    """What one POST came to."""

    kind: str  # "ok", "retry" or "reject"
    detail: str  # status line or error, for logs
    retry_after_s: float | None = None
    rejected_spans: int = 0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class OtlpHttpClient:
    """POSTs protobuf bodies to one OTLP/HTTP traces URL."""

    def __init__(self, host: str, port: int, path: str, headers: dict[str, str], *, https: bool = False,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._host = host
        self._port = port
        self._path = path
        self._headers = headers
        self._https = https
        self._ssl_context = ssl_context
        self._conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes, timeout: float) -> Answer:
        """One POST. A reused keep-alive connection that the server had closed is retried once at
        once on a fresh one (that is not a failed attempt)."""
        reused = self._conn is not None
        while True:
            try:
                conn = self._connection(timeout)
                conn.request("POST", self._path, body=body, headers=self._headers)
                response = conn.getresponse()
                return self._answer(response)
            except ssl.SSLCertVerificationError as exc:  # a wrong certificate does not fix itself
                self.close()
                return Answer("reject", f"TLS: {exc}")
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if reused and isinstance(exc, _STALE_CONNECTION_ERRORS):
                    reused = False
                    continue
                return Answer("retry", f"{type(exc).__name__}: {exc}")

    def _answer(self, response: http.client.HTTPResponse) -> Answer:
        status = response.status
        length = response.length
        if length is not None and length <= MAX_RESPONSE_BYTES:
            data = response.read()
        else:
            data = response.read(MAX_RESPONSE_BYTES)
            self.close()  # unread rest: the connection cannot be reused
        detail = f"HTTP {status} {response.reason}".rstrip()
        if 200 <= status < 300:
            rejected = 0
            if data and "protobuf" in (response.getheader("Content-Type") or ""):
                try:
                    parsed = ExportTraceServiceResponse.FromString(data)
                except Exception:  # an unparsable success is still a success
                    parsed = None
                if parsed is not None and parsed.HasField("partial_success"):
                    rejected = max(0, parsed.partial_success.rejected_spans)
                    detail = parsed.partial_success.error_message or detail
            return Answer("ok", detail, rejected_spans=rejected)
        if status in RETRYABLE_STATUS:
            return Answer("retry", detail, parse_retry_after(response.getheader("Retry-After")))
        return Answer("reject", detail)

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is None:
            if self._https:
                if self._ssl_context is None:  # the system CA store, loaded once
                    self._ssl_context = ssl.create_default_context()
                conn = http.client.HTTPSConnection(self._host, self._port, timeout=timeout,
                                                   context=self._ssl_context)
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
            self._conn = conn
        else:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
        return conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # pragma: no cover
                pass

    def abort(self) -> None:
        """From another thread: make a blocked send or receive on the current socket fail now."""
        conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(2)  # socket.SHUT_RDWR
            except OSError:
                pass
