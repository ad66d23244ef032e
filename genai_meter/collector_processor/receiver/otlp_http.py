"""OTLP/HTTP trace receiver: `POST /v1/traces`, protobuf or JSON, optionally gzip/deflate.

Answers (docs/receiver.md):

| case | status | body |
|---|---|---|
| counted (some spans possibly rejected) | 200 | ExportTraceServiceResponse, `partial_success` if spans were rejected |
| undecodable body, bad framing | 400 | google.rpc.Status INVALID_ARGUMENT |
| no / wrong bearer token | 401 | google.rpc.Status UNAUTHENTICATED, `WWW-Authenticate: Bearer` |
| other path / method | 404 / 405 | |
| body past `server.max_body_bytes`, on the wire or after decompression | 413 | google.rpc.Status RESOURCE_EXHAUSTED |
| other Content-Type or Content-Encoding | 415 | |
| too many requests in flight, or shutting down | 503 + `Retry-After` | google.rpc.Status UNAVAILABLE |

Auth, content type, the in-flight cap and the shutdown gate are checked from the request head,
before a byte of the body is read. Error bodies and responses use the request's content type
(protobuf or JSON). Nothing is counted unless the whole body decoded.

Decompressing, decoding and counting run on the event loop's executor threads, never on the loop:
a large or slow body delays only its own answer, while the listener goes on serving others.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from genai_meter.collector_processor.receiver.auth import TokenAuth
from genai_meter.collector_processor.receiver.decode import (
    MEDIA_JSON,
    MEDIA_PROTOBUF,
    BadRequest,
    Decoded,
    TooLarge,
    UnsupportedEncoding,
    decode,
    decompress,
)
from genai_meter.collector_processor.receiver.gate import Gate
from genai_meter.collector_processor.receiver.ingest import Ingestor, Outcome, Unavailable
from genai_meter.exporters.httpd import BadFraming, BodyTooLarge, Request, Response

log = logging.getLogger("genai_meter")

TRACES_PATH = "/v1/traces"
RETRY_AFTER_S = 1  # what 503 answers tell clients to wait
SUPPORTED_ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})
_MEDIA = {"application/x-protobuf": MEDIA_PROTOBUF, "application/protobuf": MEDIA_PROTOBUF,
          "application/json": MEDIA_JSON}


def media_type(content_type: str) -> str | None:
    """MEDIA_PROTOBUF, MEDIA_JSON or None for a Content-Type header value."""
    return _MEDIA.get(content_type.split(";", 1)[0].strip().lower())


def status_body(code: int, message: str, media: str | None) -> tuple[bytes, str]:
    """A google.rpc.Status body in `media` (JSON when the request's type is unknown)."""
    status = status_pb2.Status(code=code, message=message)
    if media == MEDIA_PROTOBUF:
        return status.SerializeToString(), MEDIA_PROTOBUF
    return json_format.MessageToJson(status, indent=None).encode(), MEDIA_JSON


def error(http_status: int, code: int, message: str, media: str | None, **kw: object) -> Response:
    body, ctype = status_body(code, message, media)
    return Response(http_status, body, ctype, **kw)  # type: ignore[arg-type]


def success_body(rejected: int, message: str, media: str) -> bytes:
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if media == MEDIA_JSON:
        return str(json_format.MessageToJson(response, indent=None)).encode()
    body: bytes = response.SerializeToString()
    return body


class OtlpHttpHandler:
    """The `httpd` handler of the OTLP/HTTP listener. Runs on the listener's event loop."""

    def __init__(self, ingestor: Ingestor, gate: Gate, auth: TokenAuth, *, max_body_bytes: int) -> None:
        self.ingestor = ingestor
        self.gate = gate
        self.auth = auth
        self.max_body_bytes = max_body_bytes

    async def __call__(self, request: Request, read_body: Callable[[], Awaitable[bytes]]) -> Response:
        if request.path != TRACES_PATH:
            return Response(404, b"not found: OTLP traces go to POST /v1/traces\n")
        if request.method != "POST":
            return Response(405, b"method not allowed\n", headers=[("Allow", "POST")])
        media = media_type(request.header("content-type"))
        if media is None:
            return error(415, code_pb2.INVALID_ARGUMENT,
                         "Content-Type must be application/x-protobuf or application/json", None)
        encoding = request.header("content-encoding").strip().lower()
        if encoding not in SUPPORTED_ENCODINGS:
            return error(415, code_pb2.INVALID_ARGUMENT, f"unsupported Content-Encoding {encoding!r}", media)
        if not self.auth.check(request.header("authorization") or None):
            return error(401, code_pb2.UNAUTHENTICATED, "missing or invalid bearer token", media,
                         headers=[("WWW-Authenticate", "Bearer")])
        if not self.gate.try_enter():
            reason = "shutting down" if self.gate.closed else "too many requests in flight"
            return error(503, code_pb2.UNAVAILABLE, reason, media,
                         headers=[("Retry-After", str(RETRY_AFTER_S))], close=self.gate.closed)
        try:
            return await self._export(request, read_body, media)
        finally:
            self.gate.leave()

    async def _export(self, request: Request, read_body: Callable[[], Awaitable[bytes]], media: str) -> Response:
        encoding = request.header("content-encoding")
        try:
            body = await read_body()
            loop = asyncio.get_running_loop()
            outcome = await loop.run_in_executor(None, functools.partial(self._count, body, encoding, media))
        except UnsupportedEncoding as exc:
            return error(415, code_pb2.INVALID_ARGUMENT, str(exc), media, close=True)
        except TooLarge as exc:
            return error(413, code_pb2.RESOURCE_EXHAUSTED, str(exc), media, close=True)
        except BodyTooLarge:
            return error(413, code_pb2.RESOURCE_EXHAUSTED,
                         f"body is over the limit of {self.max_body_bytes} bytes", media, close=True)
        except BadRequest as exc:
            return error(400, code_pb2.INVALID_ARGUMENT, str(exc), media)
        except BadFraming as exc:  # the body cannot be read (bad Content-Length, chunking): the connection ends
            return error(400, code_pb2.INVALID_ARGUMENT, str(exc), media, close=True)
        except Unavailable as exc:  # the ledger refused: nothing counted, the client retries
            return error(503, code_pb2.UNAVAILABLE, str(exc), media, headers=[("Retry-After", str(RETRY_AFTER_S))])
        except Exception:  # pragma: no cover - Ingestor.export does not raise for span content
            log.exception("genai-meter: an OTLP/HTTP request could not be counted")
            return error(500, code_pb2.INTERNAL, "internal error", media)
        return Response(200, success_body(outcome.rejected, outcome.message, media), media)

    def _count(self, body: bytes, encoding: str, media: str) -> Outcome:
        """On an executor thread: decompress (outside the ingestor's lock: zlib lets other threads
        run), then decode and count. Raises TooLarge, BadRequest or UnsupportedEncoding (nothing
        counted then)."""
        data = decompress(body, encoding, self.max_body_bytes)
        full = self.ingestor.needs_full

        def decoded() -> Decoded:
            return decode(data, media, full=full)

        return self.ingestor.decode_and_export(decoded)
