"""Bearer-token auth and TLS settings shared by the OTLP/HTTP and OTLP/gRPC receivers.

Tokens come from `server.auth_tokens` and `server.auth_tokens_file` (one token per line; blank
lines and lines starting with `#` are ignored). No tokens configured = no auth. Tokens are compared
in constant time; they are never logged.
"""

from __future__ import annotations

import hmac
import ssl
from pathlib import Path

from genai_meter.config import ConfigError, ServerConfig


class TokenAuth:
    """Accepts `Authorization: Bearer <token>` for any configured token."""

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = [t.encode() for t in tokens if t]

    @classmethod
    def from_config(cls, server: ServerConfig, resolve=lambda p: p) -> TokenAuth:
        """Read the tokens of `server`; `resolve` maps a config path to a real path."""
        tokens = list(server.auth_tokens)
        if server.auth_tokens_file is not None:
            path = Path(resolve(server.auth_tokens_file))
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"server.auth_tokens_file: cannot read {path}: {exc.strerror}") from None
            tokens += [line.strip() for line in text.splitlines()
                       if line.strip() and not line.strip().startswith("#")]
            if not tokens:
                raise ConfigError(f"server.auth_tokens_file: {path} holds no token")
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


def tls_files(server: ServerConfig, resolve=lambda p: p) -> tuple[Path, Path] | None:
    """(cert, key) when TLS is configured; ConfigError when only one of them is set or unreadable."""
    cert, key = server.tls_cert_file, server.tls_key_file
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("server: set both tls_cert_file and tls_key_file, or neither")
    cert_path, key_path = Path(resolve(cert)), Path(resolve(key))
    for name, path in (("tls_cert_file", cert_path), ("tls_key_file", key_path)):
        if not path.is_file():
            raise ConfigError(f"server.{name}: {path} is not a readable file")
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
