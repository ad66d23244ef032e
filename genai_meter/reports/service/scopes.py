"""Bearer tokens and scopes: who may see which rows.

A token is stored only as its SHA-256 (hex). A scope is a set of exact dimension filters (field ->
allowed values); `None` is admin (every row). Every query a scoped token causes carries its scope's
filters; a request filter may narrow a scoped field but never widen it, and group_by only splits rows
that are already inside the scope.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import TypeAdapter, ValidationError

from genai_meter.config import Config, ConfigError, ReportTokenConfig
from genai_meter.reports.service.params import Forbidden

Scope = Mapping[str, Sequence[str]] | None  # None: admin


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: its name and scope (None = admin)."""

    name: str
    scope: dict[str, list[str]] | None

    @property
    def admin(self) -> bool:
        return self.scope is None


ADMIN = Principal("admin", None)


def token_hash(token: str) -> str:
    """The hex SHA-256 of a token, as the config stores it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def load_tokens(config: Config) -> list[ReportTokenConfig]:
    """reports.tokens plus the tokens file's entries; raises `ConfigError` naming the file."""
    tokens = list(config.reports.tokens)
    if config.reports.tokens_file is not None:
        path = config.resolve_path(config.reports.tokens_file)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
            tokens.extend(TypeAdapter(list[ReportTokenConfig]).validate_python(data))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read tokens file: {exc.strerror}") from None
        except (yaml.YAMLError, ValidationError) as exc:
            raise ConfigError(f"{path}: invalid tokens file: {exc}") from None
    return tokens


class TokenTable:
    """Looks up a presented bearer token by its hash in constant time per entry."""

    def __init__(self, tokens: Sequence[ReportTokenConfig]) -> None:
        self._tokens = list(tokens)

    @property
    def enabled(self) -> bool:
        """True when tokens are configured (requests must then present one)."""
        return bool(self._tokens)

    def principal(self, presented: str) -> Principal | None:
        """The principal of a presented token, None when unknown."""
        digest = token_hash(presented)
        found: ReportTokenConfig | None = None
        for entry in self._tokens:
            if hmac.compare_digest(entry.sha256, digest):
                found = entry
        if found is None:
            return None
        if found.admin:
            return Principal(found.name or "admin", None)
        return Principal(found.name or "scoped", {k: list(v) for k, v in found.scope.items()})


def apply_scope(filters: Mapping[str, Sequence[str]], scope: Scope) -> dict[str, list[str]]:
    """Request filters intersected with `scope`; raises `Forbidden` naming a filter that leaves it."""
    merged = {name: list(values) for name, values in filters.items()}
    if scope is None:
        return merged
    for name, allowed in scope.items():
        asked = merged.get(name)
        if asked is None:
            merged[name] = list(allowed)
            continue
        outside = [value for value in asked if value not in allowed]
        if outside:
            raise Forbidden(f"{name}: {outside[0][:64]!r} is outside this token's scope", name)
    return merged


def scope_covers(scope: Scope, match: Mapping[str, str]) -> bool:
    """True when every row a budget/filter `match` (label -> exact value) selects lies inside `scope`."""
    if scope is None:
        return True
    for name, allowed in scope.items():
        value = match.get(name)
        if value is None or value.startswith("~") or value not in allowed:
            return False
    return True


def state_path_default(ledger_file: Path) -> Path:
    """Where the schedule state lives when the config does not say: beside the ledger file."""
    return ledger_file.parent / "reports-state.db"
