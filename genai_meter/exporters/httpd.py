"""A small HTTP/1.1 server on asyncio, for the OTLP/HTTP receiver and the /metrics endpoint.

Why not http.server: its timeouts are per `recv`, so a client trickling one byte at a time holds a
thread forever (slowloris). Here every phase has a *deadline*: the request head must arrive within
`head_timeout_s` of its first byte, the body within `body_timeout_s` of the head, an idle keep-alive
connection is closed after `idle_timeout_s`, and a response must be taken within `head_timeout_s`.
Connections cost no thread; past `max_connections` new ones are closed at once.

Each server runs its own event loop on its own thread (`start`/`stop`). The handler is a coroutine
`handler(request, read_body) -> Response`: it decides whether to read the body at all (auth and
content-type checks come first), and `read_body()` enforces `max_body_bytes` on the wire (raising
`BodyTooLarge`). Handlers may do CPU work inline; the loop is theirs.

Keep-alive, `Expect: 100-continue`, chunked request bodies and pipelined requests are supported;
request trailers and upgrades are not.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

log = logging.getLogger("genai_meter")

MAX_HEAD_BYTES = 64 * 1024  # request line + headers
MAX_HEADERS = 100


class BodyTooLarge(Exception):
    """The request body is larger than the server's `max_body_bytes`."""


class BadFraming(Exception):
    """The request cannot be read as HTTP/1.1 (bad chunk framing, bad Content-Length)."""


@dataclass(slots=True)
class Request:
    method: str
    path: str  # without the query string
    query: str
    version: str  # "HTTP/1.1" or "HTTP/1.0"
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False  # close the connection after this response


Handler = Callable[[Request, Callable[[], Awaitable[bytes]]], Awaitable[Response]]


def parse_listen(value: str) -> tuple[str, int]:
    """'HOST:PORT' or '[v6]:PORT' -> (host, port). Raises ValueError."""
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"listen address must be HOST:PORT, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"bad port in listen address {value!r}")
    return host, int(port)


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen_socket(host: str, port: int, *, reuse_port: bool = False, backlog: int = 1024) -> socket.socket:
    """A bound, listening TCP socket (SO_REUSEADDR; SO_REUSEPORT when asked, for worker processes)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 20 * 1024 * 1024  # on the wire (before decompression)
    head_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    idle_timeout_s: float = 60.0
    max_connections: int = 1024


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


class HttpServer:
    """One listener, its event loop and thread."""

    def __init__(self, name: str, sock: socket.socket, handler: Handler, *, limits: Limits = Limits(),
                 ssl_context: ssl.SSLContext | None = None, server_header: str = "genai-meter") -> None:
        self.name = name
        self._sock = sock
        self._handler = handler
        self.limits = limits
        self._ssl = ssl_context
        self._server_header = server_header
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._connections: set[asyncio.Task] = set()
        self._busy: set[asyncio.Task] = set()  # connections inside a request
        self._start_error: BaseException | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return host, port

    def start(self) -> None:
        """Start serving on a thread of its own; returns when the socket accepts."""
        self._thread = threading.Thread(target=self._run, name=f"genai-meter-{self.name}", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(asyncio.start_server(
                self._on_connection, sock=self._sock, ssl=self._ssl, limit=MAX_HEAD_BYTES,
                ssl_handshake_timeout=self.limits.head_timeout_s if self._ssl else None))
        except BaseException as exc:  # pragma: no cover - reported to start()
            self._start_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop accepting, let requests in progress finish (up to `timeout_s`), close everything."""
        loop = self._loop
        if loop is None or self._thread is None or not loop.is_running():
            return
        future = asyncio.run_coroutine_threadsafe(self._stop(timeout_s), loop)
        try:
            future.result(timeout_s + 2.0)
        except Exception:  # pragma: no cover - stopping anyway
            log.debug("genai-meter: %s did not stop cleanly", self.name, exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout_s + 2.0)

    async def _stop(self, timeout_s: float) -> None:
        if self._server is not None:
            self._server.close()
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._busy and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=1.0)

    # -- connections ------------------------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= self.limits.max_connections:
            writer.transport.abort()
            return
        self._connections.add(task)
        try:
            await self._serve(reader, writer, task)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError, BadFraming):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:  # pragma: no cover - a handler bug must not kill the listener
            log.exception("genai-meter: %s connection failed", self.name)
        finally:
            self._connections.discard(task)
            self._busy.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, task: asyncio.Task) -> None:
        limits = self.limits
        while True:
            # idle: wait for the first byte of the next request
            try:
                async with asyncio.timeout(limits.idle_timeout_s):
                    first = await reader.read(1)
            except TimeoutError:
                return
            if not first:
                return
            self._busy.add(task)
            try:
                async with asyncio.timeout(limits.head_timeout_s):
                    head = first + await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                await self._send(writer, Response(431, b"request head too large\n", close=True), None)
                return
            except TimeoutError:
                await self._send(writer, Response(408, b"request head not received in time\n", close=True), None)
                return
            request = self._parse_head(head)
            if request is None:
                await self._send(writer, Response(400, b"malformed request head\n", close=True), None)
                return
            body_state = _BodyState()
            read_body = self._body_reader(request, reader, writer, body_state)
            try:
                response = await self._handler(request, read_body)
            except BodyTooLarge:
                response = Response(413, b"request body too large\n", close=True)
                body_state.poisoned = True
            except TimeoutError:
                response = Response(408, b"request body not received in time\n", close=True)
                body_state.poisoned = True
            except BadFraming as exc:
                response = Response(400, f"{exc}\n".encode(), close=True)
                body_state.poisoned = True
            unread = not body_state.done and not body_state.empty
            if unread:
                response.close = True  # an unread body would be taken for the next request
            keep = (not response.close and not body_state.poisoned and _keep_alive(request))
            response.close = not keep
            await self._send(writer, response, request)
            self._busy.discard(task)
            if not keep:
                if unread or body_state.poisoned:
                    await _discard_input(reader, writer)
                return

    def _parse_head(self, head: bytes) -> Request | None:
        try:
            text = head.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
            return None
        lines = text.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return None
        method, target, version = parts
        headers: dict[str, str] = {}
        count = 0
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                return None
            count += 1
            if count > MAX_HEADERS:
                return None
            key = name.lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        path, _, query = target.partition("?")
        return Request(method, path, query, version, headers)

    def _body_reader(self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     state: _BodyState) -> Callable[[], Awaitable[bytes]]:
        limits = self.limits
        te = request.header("transfer-encoding").lower()
        chunked = te != "" and te.split(",")[-1].strip() == "chunked"
        length_text = request.header("content-length")
        if te and not chunked:
            async def unsupported() -> bytes:
                raise BadFraming("unsupported Transfer-Encoding")
            state.empty = False
            return unsupported
        if not chunked:
            if not length_text:
                state.empty = True
            elif not length_text.isdigit():
                async def bad_length() -> bytes:
                    raise BadFraming("bad Content-Length")
                state.empty = False
                return bad_length
            else:
                state.empty = int(length_text) == 0
        else:
            state.empty = False
        expect_continue = request.header("expect").lower() == "100-continue"

        async def read_body() -> bytes:
            if state.done:
                return state.body
            if not chunked and length_text and int(length_text) > limits.max_body_bytes:
                raise BodyTooLarge()
            if expect_continue and request.version == "HTTP/1.1" and not state.empty:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            async with asyncio.timeout(limits.body_timeout_s):
                if chunked:
                    body = await _read_chunked(reader, limits.max_body_bytes)
                elif length_text:
                    body = await reader.readexactly(int(length_text))
                else:
                    body = b""
            state.done = True
            state.body = body
            return body

        return read_body

    async def _send(self, writer: asyncio.StreamWriter, response: Response, request: Request | None) -> None:
        head_only = request is not None and request.method == "HEAD"
        lines = [f"HTTP/1.1 {response.status} {_reason(response.status)}",
                 f"Server: {self._server_header}",
                 f"Content-Length: {len(response.body)}"]
        if response.body or response.status not in (204, 304):
            lines.append(f"Content-Type: {response.content_type}")
        for name, value in response.headers:
            lines.append(f"{name}: {value}")
        if response.close:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not head_only and response.body:
            writer.write(response.body)
        async with asyncio.timeout(self.limits.head_timeout_s):
            await writer.drain()


LINGER_S = 1.0  # after an early answer, read and drop what the client still sends, this long
LINGER_MAX_BYTES = 8 * 1024 * 1024  # and at most this much


async def _discard_input(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Lingering close: a client still sending the body it was refused gets to read the answer
    instead of a connection reset."""
    try:
        if writer.can_write_eof():
            writer.write_eof()
        dropped = 0
        async with asyncio.timeout(LINGER_S):
            while dropped < LINGER_MAX_BYTES:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                dropped += len(chunk)
    except (TimeoutError, ConnectionError, OSError):
        return


@dataclass(slots=True)
class _BodyState:
    empty: bool = True
    done: bool = False
    poisoned: bool = False
    body: bytes = b""


def _keep_alive(request: Request) -> bool:
    connection = request.header("connection").lower()
    if request.version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        try:
            line = await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError:
            raise BadFraming("chunk size line too long") from None
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadFraming("bad chunk size") from None
        if size < 0:
            raise BadFraming("bad chunk size")
        if size == 0:
            while True:  # trailers, up to the empty line
                trailer = await reader.readuntil(b"\r\n")
                if trailer == b"\r\n":
                    return b"".join(parts)
        total += size
        if total > limit:
            raise BodyTooLarge()
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise BadFraming("chunk not followed by CRLF")
