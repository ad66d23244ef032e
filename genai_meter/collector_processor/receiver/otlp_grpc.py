"""OTLP/gRPC trace receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.

Same semantics as OTLP/HTTP (docs/receiver.md): OK with `partial_success` for rejected spans,
INVALID_ARGUMENT for an undecodable request (nothing counted), UNAUTHENTICATED without a valid
bearer token (`authorization` metadata), UNAVAILABLE when too many requests are in flight or while
shutting down (clients retry it), RESOURCE_EXHAUSTED from gRPC itself past the message size limit
(`server.max_body_bytes`, applied by gRPC after decompression).

The request arrives as raw bytes (no deserializer in gRPC), so a bad message is answered
INVALID_ARGUMENT here rather than INTERNAL by gRPC. Handlers run on gRPC's thread pool.
"""

from __future__ import annotations

import logging
from concurrent import futures
from pathlib import Path

import grpc

from genai_meter.collector_processor.receiver.auth import TokenAuth
from genai_meter.collector_processor.receiver.decode import MEDIA_PROTOBUF, BadRequest, decode
from genai_meter.collector_processor.receiver.gate import Gate
from genai_meter.collector_processor.receiver.ingest import Ingestor, Unavailable

log = logging.getLogger("genai_meter")

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
METHOD = "Export"
_EMPTY_RESPONSE = b""  # an ExportTraceServiceResponse with nothing set


def _response_bytes(rejected: int, message: str) -> bytes:
    if not rejected and not message:
        return _EMPTY_RESPONSE
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    response = ExportTraceServiceResponse()
    response.partial_success.rejected_spans = rejected
    response.partial_success.error_message = message
    body: bytes = response.SerializeToString()
    return body


class GrpcReceiver:
    """The gRPC listener. `start()` binds (and returns the port), `stop(grace)` ends it."""

    def __init__(self, ingestor: Ingestor, gate: Gate, auth: TokenAuth, address: str, *,
                 max_message_bytes: int, threads: int, tls: tuple[Path, Path] | None = None,
                 reuse_port: bool = False) -> None:
        self.ingestor = ingestor
        self.gate = gate
        self.auth = auth
        self.address = address
        self._tls = tls
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", 1024 * 1024),
            ("grpc.so_reuseport", 1 if reuse_port else 0),  # gRPC's default is 1: two servers could share a port
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.max_connection_idle_ms", 10 * 60 * 1000),
        ]
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="genai-meter-grpc"),
            handlers=[grpc.method_handlers_generic_handler(SERVICE, {
                METHOD: grpc.unary_unary_rpc_method_handler(self._export),
            })],
            options=options,
            maximum_concurrent_rpcs=threads * 4,  # a hard backstop; the Gate answers UNAVAILABLE first
        )
        self.port = 0

    def start(self) -> int:
        """Bind and start; returns the bound port. Raises RuntimeError if the address is taken."""
        try:
            if self._tls is not None:
                cert, key = self._tls
                credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
                port = self._server.add_secure_port(self.address, credentials)
            else:
                port = self._server.add_insecure_port(self.address)
        except RuntimeError:  # gRPC says only "Failed to bind to address"
            port = 0
        if not port:
            raise RuntimeError(f"OTLP/gRPC cannot listen on {self.address}: the port is in use or the address is "
                               "not local (change server.grpc_listen or --grpc-listen)")
        self._server.start()
        self.port = int(port)
        return self.port

    def stop(self, grace_s: float) -> None:
        """Stop taking calls, give the ones in progress `grace_s`, then end. Blocks until done."""
        self._server.stop(grace_s).wait(grace_s + 2.0)

    def _export(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        if self.auth.enabled:
            token = None
            for key, value in context.invocation_metadata():
                if key == "authorization":
                    token = value
                    break
            if not self.auth.check(token):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
        if not self.gate.try_enter():
            reason = "shutting down" if self.gate.closed else "too many requests in flight"
            context.abort(grpc.StatusCode.UNAVAILABLE, reason)
        try:
            full = self.ingestor.needs_full
            try:  # decoding and counting under the ingestor's lock: one request at a time
                outcome = self.ingestor.decode_and_export(lambda: decode(raw, MEDIA_PROTOBUF, full=full))
            except BadRequest as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            except Unavailable as exc:  # the ledger refused: nothing counted, the client retries
                context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            return _response_bytes(outcome.rejected, outcome.message)
        finally:
            self.gate.leave()
