"""Query parameter declarations: what each endpoint accepts, validated in one place.

Handlers validate with the same `Param` objects the OpenAPI description is generated from, so the
description cannot drift from the code. A bad value raises `ParamError` (HTTP 400), whose message
names the parameter and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

MAX_VALUE_LENGTH = 256  # longest filter value a request may send
MAX_VALUES = 100  # most values one filter may list


class ApiError(Exception):
    """An error answered to the client as JSON `{"error": {...}}` with `status`."""

    status = 400

    def __init__(self, message: str, parameter: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter


class ParamError(ApiError):
    """A bad query parameter (400)."""


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Unauthorized(ApiError):
    status = 401


@dataclass(frozen=True, slots=True)
class Param:
    """One query (or path) parameter: its type and allowed values, for validation and OpenAPI."""

    name: str
    description: str
    kind: Literal["string", "integer", "array"] = "string"
    enum: tuple[str, ...] = ()
    pattern: str = ""
    minimum: int | None = None
    maximum: int | None = None
    default: str | int | None = None
    location: Literal["query", "path"] = "query"
    max_length: int = MAX_VALUE_LENGTH

    def allowed(self) -> str:
        """A short phrase saying what is allowed."""
        if self.enum:
            return "one of " + ", ".join(self.enum)
        if self.kind == "integer":
            return f"an integer from {self.minimum} to {self.maximum}"
        if self.pattern:
            return f"a value matching {self.pattern}"
        return f"a string of at most {self.max_length} characters"

    def parse(self, raw: str) -> str | int:
        """One raw value, checked; raises `ParamError` naming this parameter."""
        if len(raw) > self.max_length or "\x00" in raw:
            raise ParamError(f"{self.name}: value too long or not text; allowed: {self.allowed()}", self.name)
        if self.kind == "integer":
            if not re.fullmatch(r"[0-9]{1,12}", raw):
                raise ParamError(f"{self.name}: {raw!r} is not allowed; allowed: {self.allowed()}", self.name)
            value = int(raw)
            low = self.minimum if self.minimum is not None else value
            high = self.maximum if self.maximum is not None else value
            if not low <= value <= high:
                raise ParamError(f"{self.name}: {value} is out of range; allowed: {self.allowed()}", self.name)
            return value
        if self.enum and raw not in self.enum:
            raise ParamError(f"{self.name}: {raw!r} is not allowed; allowed: {self.allowed()}", self.name)
        if self.pattern and not re.fullmatch(self.pattern, raw):
            raise ParamError(f"{self.name}: {raw!r} is not allowed; allowed: {self.allowed()}", self.name)
        return raw


def filter_param(field: str) -> Param:
    """The repeatable exact-match filter on `field`."""
    return Param(field, f"only calls whose {field} equals one of these values (repeatable)", kind="array")


@dataclass(slots=True)
class Parsed:
    """Validated query parameters: single values by name, and filters field -> values."""

    values: dict[str, str | int]
    lists: dict[str, list[str]]
    filters: dict[str, list[str]]

    def text(self, name: str, default: str = "") -> str:
        value = self.values.get(name, default)
        return str(value)

    def number(self, name: str, default: int) -> int:
        value = self.values.get(name, default)
        return value if isinstance(value, int) else default


def parse_query(args: Mapping[str, Sequence[str]], params: Sequence[Param], fields: Sequence[str],
                with_filters: bool) -> Parsed:
    """Validate `args` (name -> raw values) against `params` and, when `with_filters`, filters on `fields`.

    Unknown names, repeated single-valued names and bad values raise `ParamError`.
    """
    by_name = {p.name: p for p in params if p.location == "query"}
    values: dict[str, str | int] = {}
    lists: dict[str, list[str]] = {}
    filters: dict[str, list[str]] = {}
    field_set = set(fields) if with_filters else set()
    for name, raws in args.items():
        param = by_name.get(name)
        if param is None and name in field_set:
            param = filter_param(name)
        if param is None:
            allowed = sorted(by_name) + (sorted(field_set) if with_filters else [])
            raise ParamError(f"{name[:64]}: unknown parameter; allowed: {', '.join(allowed)}", name[:64])
        if param.kind == "array":
            if len(raws) > MAX_VALUES:
                raise ParamError(f"{name}: at most {MAX_VALUES} values", name)
            checked = [str(param.parse(raw)) for raw in raws]
            if name in field_set and name not in by_name:
                filters[name] = checked
            else:
                lists[name] = checked
            continue
        if len(raws) != 1:
            raise ParamError(f"{name}: give it once; allowed: {param.allowed()}", name)
        values[name] = param.parse(raws[0])
    for param in params:
        if param.location == "query" and param.default is not None and param.name not in values:
            values[param.name] = param.default
    return Parsed(values, lists, filters)
