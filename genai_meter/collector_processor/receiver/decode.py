"""OTLP trace request bodies -> decoded requests, all or nothing.

Decoding counts nothing: `decompress` and `decode` either return the whole request or raise
`BadRequest` (HTTP 400 / gRPC INVALID_ARGUMENT), `TooLarge` (413) or `UnsupportedEncoding` (415),
so a request is never half counted.

Protobuf is parsed by upb (recursion-limited) into a *lean* schema (`LeanRequest`): wire-compatible
with ExportTraceServiceRequest, it declares only the fields metering reads, and keeps each span
attribute as its raw `KeyValue` bytes (collector_processor.spans decodes those of GenAI spans
only). The full `ExportTraceServiceRequest` is parsed too only when it is needed (forwarding).
OTLP/JSON gets its nesting depth checked on the raw bytes before `json.loads`, hex ids converted,
unknown fields ignored, then goes the same way.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor_pb2 import FieldDescriptorProto
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

MEDIA_PROTOBUF = "application/x-protobuf"
MEDIA_JSON = "application/json"
MAX_JSON_DEPTH = 64  # OTLP needs ~12 levels plus 3 per nested AnyValue

class BadRequest(ValueError):
    """The body cannot be decoded (HTTP 400, gRPC INVALID_ARGUMENT). Nothing was counted."""


class TooLarge(ValueError):
    """The body, after decompression, is larger than the limit (HTTP 413)."""


class UnsupportedEncoding(ValueError):
    """A Content-Encoding this receiver does not speak (HTTP 415)."""


# ---------------------------------------------------------------------------------------------
# Bodies


MAX_GZIP_MEMBERS = 1024  # gzip members in one body (clients send one; more is refused as 400)
_FIRST_SLICE = 256  # compressed input fed per step: this much first, doubling per step...
_MAX_SLICE = 1024 * 1024  # ...up to this much


def decompress(body: bytes, encoding: str, limit: int, *, max_members: int = MAX_GZIP_MEMBERS) -> bytes:
    """Undo `Content-Encoding` (identity, gzip, x-gzip, deflate), never producing more than `limit`.

    Linear in the body: the compressed input is fed to zlib in slices (growing, so that a member's
    trailing slice is at most twice its size), and only a slice's unused tail is ever copied, so
    members back to back cost no more than one member of their total size. At most `max_members`
    gzip members. Output stops at `limit + 1` bytes (a gzip bomb). Raises `TooLarge`,
    `BadRequest` (corrupt or truncated stream, too many members) or `UnsupportedEncoding`.
    """
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise TooLarge(f"body of {len(body)} bytes is over the limit of {limit}")
        return body
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = 32 + zlib.MAX_WBITS  # zlib or gzip header, as browsers and Go accept
    else:
        raise UnsupportedEncoding(f"unsupported Content-Encoding {encoding!r}")
    view = memoryview(body)
    size = len(body)
    out: list[bytes] = []
    produced = pos = members = 0
    try:
        while pos < size:
            members += 1
            if members > max_members:
                raise BadRequest(f"compressed body has more than {max_members} gzip members")
            inflater = zlib.decompressobj(wbits)
            step = _FIRST_SLICE
            while True:  # one member, slice by slice
                end = min(size, pos + step)
                chunk = inflater.decompress(view[pos:end], limit + 1 - produced)
                produced += len(chunk)
                if produced > limit:
                    raise TooLarge(f"body inflates past the limit of {limit} bytes")
                out.append(chunk)
                if inflater.eof:
                    pos = end - len(inflater.unused_data)  # the next member starts here
                    break
                if end >= size:
                    raise BadRequest("truncated compressed body")
                pos = end
                step = min(step * 2, _MAX_SLICE)
            if wbits != 16 + zlib.MAX_WBITS:
                break  # deflate: one stream
    except zlib.error as exc:
        raise BadRequest(f"corrupt compressed body: {exc}") from None
    return b"".join(out)


# ---------------------------------------------------------------------------------------------
# The lean schema

_OPT = FieldDescriptorProto.LABEL_OPTIONAL
_REP = FieldDescriptorProto.LABEL_REPEATED
_T = FieldDescriptorProto
# message -> fields (name, number, type, label, message type); numbers as in opentelemetry-proto
_LEAN: dict[str, list[tuple[str, int, int, int, str]]] = {
    "Request": [("resource_spans", 1, _T.TYPE_MESSAGE, _REP, "ResourceSpans")],
    "ResourceSpans": [("resource", 1, _T.TYPE_MESSAGE, _OPT, "Resource"),
                      ("scope_spans", 2, _T.TYPE_MESSAGE, _REP, "ScopeSpans")],
    "Resource": [("attributes", 1, _T.TYPE_BYTES, _REP, "")],  # raw KeyValue
    "ScopeSpans": [("scope", 1, _T.TYPE_MESSAGE, _OPT, "Scope"), ("spans", 2, _T.TYPE_MESSAGE, _REP, "Span")],
    "Scope": [("name", 1, _T.TYPE_STRING, _OPT, "")],
    "Span": [("trace_id", 1, _T.TYPE_BYTES, _OPT, ""), ("span_id", 2, _T.TYPE_BYTES, _OPT, ""),
             ("trace_state", 3, _T.TYPE_STRING, _OPT, ""), ("parent_span_id", 4, _T.TYPE_BYTES, _OPT, ""),
             ("name", 5, _T.TYPE_STRING, _OPT, ""), ("start_time_unix_nano", 7, _T.TYPE_FIXED64, _OPT, ""),
             ("end_time_unix_nano", 8, _T.TYPE_FIXED64, _OPT, ""),
             ("attributes", 9, _T.TYPE_BYTES, _REP, ""),  # raw KeyValue
             ("events", 11, _T.TYPE_MESSAGE, _REP, "Event"), ("status", 15, _T.TYPE_MESSAGE, _OPT, "Status")],
    "Event": [("time_unix_nano", 1, _T.TYPE_FIXED64, _OPT, ""), ("name", 2, _T.TYPE_STRING, _OPT, "")],
    "Status": [("code", 3, _T.TYPE_INT32, _OPT, "")],
}


def _lean_request_class() -> type[Message]:
    package = "genai_meter.lean.v1"
    proto = descriptor_pb2.FileDescriptorProto(name="genai_meter/lean_trace.proto", package=package,
                                               syntax="proto3")
    for name, fields in _LEAN.items():
        message = proto.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            added = message.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                added.type_name = f".{package}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    message_class: type[Any] = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.Request"))
    return message_class


LeanRequest = _lean_request_class()


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded request: the lean view (always) and the full message (when asked for)."""

    lean: Any  # LeanRequest
    full: ExportTraceServiceRequest | None
    data: bytes  # the serialized protobuf (for the no-GenAI fast path)


def decode(data: bytes, media_type: str, *, full: bool = False) -> Decoded:
    """Parse a decompressed body of `media_type` (MEDIA_PROTOBUF or MEDIA_JSON); with `full`, also
    as ExportTraceServiceRequest. Raises BadRequest."""
    message: ExportTraceServiceRequest | None = None
    if media_type == MEDIA_JSON:
        message = parse_json(data)
        data = message.SerializeToString()
    elif full:
        message = parse_protobuf(data)
    return Decoded(parse_lean(data), message if full else None, data)


def parse_lean(data: bytes) -> Any:
    try:
        return LeanRequest.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise BadRequest(f"cannot decode protobuf ExportTraceServiceRequest: {exc}") from None


def parse_protobuf(data: bytes) -> ExportTraceServiceRequest:
    try:
        request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(data)
        return request
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise BadRequest(f"cannot decode protobuf ExportTraceServiceRequest: {exc}") from None


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_TO_PARENS = bytes.maketrans(b"[{]}", b"(())")
_OPEN = ord("(")
_CHUNK = 32


def json_depth_ok(data: bytes, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """True if no JSON container in `data` nests deeper than `max_depth` (checked before parsing).

    Strings are cut out and everything but brackets deleted (C speed); then the brackets are
    walked in chunks, byte by byte only where a chunk could reach past `max_depth`, stopping there.
    """
    if b"\\" in data:  # drop escaped backslashes, then escaped quotes: every '"' left delimits a string
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(data.split(b'"')[::2])
    brackets = outside.translate(_TO_PARENS, _NOT_BRACKETS)
    depth = 0
    for start in range(0, len(brackets), _CHUNK):
        chunk = brackets[start:start + _CHUNK]
        opens = chunk.count(b"(")
        if depth + opens <= max_depth:
            depth += 2 * opens - len(chunk)
            continue
        for byte in chunk:
            if byte == _OPEN:
                depth += 1
                if depth > max_depth:
                    return False
            else:
                depth -= 1
    return True


def parse_json(data: bytes, max_depth: int = MAX_JSON_DEPTH) -> ExportTraceServiceRequest:
    """OTLP/JSON -> request: hex ids, lowerCamelCase or original keys, integer enums, int64 as
    strings, unknown fields ignored. Raises BadRequest."""
    if not json_depth_ok(data, max_depth):
        raise BadRequest(f"JSON nests deeper than {max_depth} levels")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise BadRequest("OTLP/JSON body must be an object")
    try:
        _hex_ids_to_base64(obj)
        message = ExportTraceServiceRequest()
        json_format.ParseDict(obj, message, ignore_unknown_fields=True, max_recursion_depth=max_depth + 8)
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise BadRequest(f"invalid OTLP/JSON: {exc}") from None
    return message


def _items(obj: Any, *keys: str) -> list[Any]:
    if not isinstance(obj, dict):
        return []
    for key in keys:
        value = obj.get(key)
        if isinstance(value, list):
            return value
    return []


def _fix_id(obj: dict[str, Any], keys: tuple[str, str]) -> None:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str):
            try:
                raw = binascii.unhexlify(value) if value else b""
            except (binascii.Error, ValueError):
                raw = b""  # invalid hex: the span is rejected later, not the request
            obj[key] = base64.b64encode(raw).decode("ascii")


_TRACE_ID_KEYS = ("traceId", "trace_id")
_SPAN_ID_KEYS = ("spanId", "span_id")
_PARENT_ID_KEYS = ("parentSpanId", "parent_span_id")


def _hex_ids_to_base64(request: dict[str, Any]) -> None:
    # OTLP/JSON writes ids as hex; protobuf JSON expects base64 for bytes fields.
    for rs in _items(request, "resourceSpans", "resource_spans"):
        for ss in _items(rs, "scopeSpans", "scope_spans"):
            for span in _items(ss, "spans"):
                if not isinstance(span, dict):
                    continue
                _fix_id(span, _TRACE_ID_KEYS)
                _fix_id(span, _SPAN_ID_KEYS)
                _fix_id(span, _PARENT_ID_KEYS)
                for link in _items(span, "links"):
                    if isinstance(link, dict):
                        _fix_id(link, _TRACE_ID_KEYS)
                        _fix_id(link, _SPAN_ID_KEYS)


