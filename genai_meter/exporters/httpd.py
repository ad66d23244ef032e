"""A small HTTP/1.1 server on asyncio, for the OTLP/HTTP receiver and the /metrics endpoint.

Why not http.server: its timeouts are per `recv`, so a client trickling one byte at a time holds a
thread forever (slowloris). Here every phase has a *deadline*: a new connection must send its
first request head within `head_timeout_s`, a request head must arrive within `head_timeout_s` of
its first byte, the body within `body_timeout_s` of the head, an idle keep-alive connection (one
that has been answered) is closed after `idle_timeout_s`, and a response must be taken within
`head_timeout_s`. Connections cost no thread. At `max_connections`, a new connection closes the
connection that has been idle longest (never one inside a request); only when every connection is
inside a request is the new one closed at once.

A body over `max_body_bytes` is answered 413 (the body says the limit) and the connection closed;
a declared body up to `discard_body_bytes` is first read and dropped (within `body_timeout_s`), so
that a client that sends its whole body before reading sees the 413, not a reset.

Each server runs its own event loop on its own thread (`start`/`stop`). The handler is a coroutine
`handler(request, read_body) -> Response`: it decides whether to read the body at all (auth and
content-type checks come first), and `read_body()` enforces `max_body_bytes` on the wire (raising
`BodyTooLarge`). Handlers must not do long CPU work inline (it would stall every connection of
the listener): they run it in an executor.

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
from dataclasses import dataclass
from http import HTTPStatus

from genai_meter.exporters.http_wire import (
    BadFraming,
    BodyState,
    BodyTooLarge,
    Request,
    Response,
    discard_input,
    drop,
    format_address,
    keep_alive,
    listen_socket,
    parse_listen,
    read_chunked,
)

log = logging.getLogger("genai_meter")

MAX_HEAD_BYTES = 64 * 1024  # request line + headers
MAX_HEADERS = 100

__all__ = ["BadFraming", "BodyTooLarge", "Handler", "HttpServer", "Limits", "Request", "Response", "format_address",
           "listen_socket", "parse_listen"]

Handler = Callable[[Request, Callable[[], Awaitable[bytes]]], Awaitable[Response]]


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 20 * 1024 * 1024  # on the wire (before decompression)
    head_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    idle_timeout_s: float = 60.0
    max_connections: int = 1024
    discard_body_bytes: int = 64 * 1024 * 1024  # a refused body up to this size is read and dropped before the 413


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
        self._connections: set[asyncio.Task[None]] = set()
        self._busy: set[asyncio.Task[None]] = set()  # connections inside a request
        # connections waiting for a request, oldest first: evicted first at the connection limit
        self._idle: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self.evicted = 0  # idle connections closed to make room (for tests and logs)
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
        if len(self._connections) >= self.limits.max_connections and not self._evict_idle():
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
            self._idle.pop(task, None)
            writer.close()

    def _evict_idle(self) -> bool:
        """Close the connection idle longest to make room for a new one; False if none is idle."""
        if not self._idle:
            return False
        task, writer = next(iter(self._idle.items()))
        del self._idle[task]
        self._connections.discard(task)  # its slot is free now; its task ends on the closed transport
        writer.transport.abort()
        self.evicted += 1
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     task: asyncio.Task[None]) -> None:
        limits = self.limits
        wait_s = limits.head_timeout_s  # a connection that has sent nothing gets the head deadline
        while True:
            # idle: wait for the first byte of the next request (evictable meanwhile)
            self._idle[task] = writer
            try:
                async with asyncio.timeout(wait_s):
                    first = await reader.read(1)
            except TimeoutError:
                return
            finally:
                self._idle.pop(task, None)
            if not first:
                return
            wait_s = limits.idle_timeout_s
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
            body_state = BodyState()
            read_body = self._body_reader(request, reader, writer, body_state)
            try:
                response = await self._handler(request, read_body)
            except BodyTooLarge:
                response = Response(413, f"request body is over the limit of {limits.max_body_bytes} bytes\n".encode(),
                                    close=True)
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
            keep = (not response.close and not body_state.poisoned and keep_alive(request))
            response.close = not keep
            await self._send(writer, response, request)
            self._busy.discard(task)
            if not keep:
                if unread or body_state.poisoned:
                    await discard_input(reader, writer)
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
                     state: BodyState) -> Callable[[], Awaitable[bytes]]:
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
            elif not (length_text.isascii() and length_text.isdigit()) or len(length_text) > 18:
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
            length = int(length_text) if not chunked and length_text else 0
            if length > limits.max_body_bytes:
                if expect_continue or length > limits.discard_body_bytes:
                    raise BodyTooLarge()  # not sent yet, or too much to take in: answer now, then close
                async with asyncio.timeout(limits.body_timeout_s):
                    await drop(reader, length)
                state.done = True
                raise BodyTooLarge()
            if expect_continue and request.version == "HTTP/1.1" and not state.empty:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            async with asyncio.timeout(limits.body_timeout_s):
                if chunked:
                    body = await read_chunked(reader, limits.max_body_bytes, limits.discard_body_bytes)
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


