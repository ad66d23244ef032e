"""Bearer-token auth and TLS settings shared by the OTLP/HTTP and OTLP/gRPC receivers.

Tokens come from `server.auth_tokens` and `server.auth_tokens_file` (one token per line; blank
lines and lines starting with `#` are ignored). No tokens configured = no auth. Tokens are compared
in constant time; they are never logged.

Errors are `ConfigError`s that name the config file, the key and the file it points to; TLS files
are checked (both set, readable, a certificate and a matching key, not swapped) before anything binds.
"""

from __future__ import annotations

import hmac
import ssl
from collections.abc import Callable
from pathlib import Path

from genai_meter.config import ConfigError, ServerConfig


class TokenAuth:
    """Accepts `Authorization: Bearer <token>` for any configured token."""

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = [t.encode() for t in tokens if t]

    @classmethod
    def from_config(cls, server: ServerConfig, resolve: Callable[[Path], Path] = lambda p: p) -> TokenAuth:
        """Read the tokens of `server`; `resolve` maps a config path to a real path."""
        tokens = list(server.auth_tokens)
        if server.auth_tokens_file is not None:
            where = _config_file(resolve)
            path = Path(resolve(server.auth_tokens_file))
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise ConfigError(f"{where}server.auth_tokens_file: cannot read {path}: {reason}") from None
            tokens += [line.strip() for line in text.splitlines()
                       if line.strip() and not line.strip().startswith("#")]
            if not tokens:
                raise ConfigError(f"{where}server.auth_tokens_file: {path} holds no token")
        return cls(tokens)

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def check(self, authorization: str | bytes | None) -> bool:
        """True if auth is off, or the header value is `Bearer <a configured token>`."""
        if not self._tokens:
            return True
        if not authorization:
            return False
        if isinstance(authorization, str):
            authorization = authorization.encode("latin-1", "replace")
        scheme, _, token = authorization.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        token = token.strip()
        ok = False
        for candidate in self._tokens:  # compare with every token: time does not tell which matched
            ok |= hmac.compare_digest(candidate, token)
        return ok


def _config_file(resolve: Callable[[Path], Path]) -> str:
    """"genai-meter.yaml: " when `resolve` is a Config's `resolve_path` and it came from a file."""
    source = getattr(getattr(resolve, "__self__", None), "source_path", None)
    return f"{source}: " if source is not None else ""


def _pem_kinds(path: Path) -> set[str]:
    """"certificate" and/or "key": what PEM blocks the file holds (its first 1 MiB)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(1024 * 1024)
    except OSError:
        return set()
    kinds = set()
    if b"-----BEGIN CERTIFICATE-----" in head:
        kinds.add("certificate")
    if b"PRIVATE KEY-----" in head:
        kinds.add("key")
    return kinds


def tls_files(server: ServerConfig, resolve: Callable[[Path], Path] = lambda p: p) -> tuple[Path, Path] | None:
    """(cert, key) when TLS is configured. ConfigError (naming the config file, the key and the
    file) when only one is set, one is unreadable, they are swapped, or they do not load together."""
    where = _config_file(resolve)
    cert, key = server.tls_cert_file, server.tls_key_file
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError(f"{where}server: set both tls_cert_file and tls_key_file, or neither")
    cert_path, key_path = Path(resolve(cert)), Path(resolve(key))
    for name, path in (("tls_cert_file", cert_path), ("tls_key_file", key_path)):
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise ConfigError(f"{where}server.{name}: cannot read {path}: {exc.strerror}") from None
        if not path.is_file():
            raise ConfigError(f"{where}server.{name}: {path} is not a file")
    cert_kinds, key_kinds = _pem_kinds(cert_path), _pem_kinds(key_path)
    if "certificate" not in cert_kinds and "key" in cert_kinds and "certificate" in key_kinds:
        raise ConfigError(f"{where}server.tls_cert_file and server.tls_key_file are swapped: {cert_path} holds "
                          f"a private key and {key_path} a certificate")
    if "certificate" not in cert_kinds:
        raise ConfigError(f"{where}server.tls_cert_file: {cert_path} holds no PEM certificate")
    if "key" not in key_kinds:
        raise ConfigError(f"{where}server.tls_key_file: {key_path} holds no PEM private key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(cert_path), str(key_path))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{where}server.tls_cert_file / server.tls_key_file: {cert_path} and {key_path} "
                          f"do not load as a certificate and its private key: {exc}") from None
    return cert_path, key_path


def server_ssl_context(files: tuple[Path, Path]) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or newer) for the HTTP receiver."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(files[0]), str(files[1]))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"server: cannot load TLS certificate/key: {exc}") from None
    context.set_alpn_protocols(["http/1.1"])
    return context
