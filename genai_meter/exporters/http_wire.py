"""HTTP/1.1 wire pieces of `exporters.httpd`: request and response types, listen addresses and
sockets, and body reading (chunked decoding, dropping a refused body, lingering close)."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field


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


LINGER_S = 1.0  # after an early answer, read and drop what the client still sends, this long
LINGER_MAX_BYTES = 8 * 1024 * 1024  # and at most this much


async def discard_input(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
class BodyState:
    empty: bool = True
    done: bool = False
    poisoned: bool = False
    body: bytes = b""


def keep_alive(request: Request) -> bool:
    connection = request.header("connection").lower()
    if request.version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


async def drop(reader: asyncio.StreamReader, length: int) -> None:
    """Read and forget `length` bytes (a refused body the client sends anyway)."""
    while length > 0:
        chunk = await reader.read(min(length, 256 * 1024))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", length)
        length -= len(chunk)


async def read_chunked(reader: asyncio.StreamReader, limit: int, discard: int = 0) -> bytes:
    """A chunked body of at most `limit` bytes; past it, chunks are dropped up to `discard` bytes
    in all (so the client sees the 413) before `BodyTooLarge` is raised."""
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
                    if total > limit:
                        raise BodyTooLarge()
                    return b"".join(parts)
        total += size
        if total > limit:
            parts.clear()
            if total > discard:
                raise BodyTooLarge()
            await drop(reader, size)
        else:
            parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise BadFraming("chunk not followed by CRLF")
