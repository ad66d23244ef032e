"""The OpenAPI 3.1 description, generated from the endpoint registry (the handlers' own declarations)."""

from __future__ import annotations

from collections.abc import Sequence

from genai_meter.reports.service.api import ERROR, JSON, Endpoint
from genai_meter.reports.service.params import MAX_VALUE_LENGTH, MAX_VALUES, Param

NO_NUL = "^[^\\x00]*$"  # any text without NUL characters
_REASONS = {400: "invalid parameter (the message names it and what is allowed)", 401: "missing or unknown token",
            403: "outside the token's scope, or (no tokens configured) a Host that is not this service's address",
            404: "not found",
            503: "the ledger is unavailable (the message says why) or the service is busy; retry after Retry-After",
            504: "the answer ran past its time limit (reports.limits)"}


def _schema(param: Param, fields: Sequence[str]) -> dict[str, object]:
    if param.kind == "integer":
        schema: dict[str, object] = {"type": "integer", "minimum": param.minimum, "maximum": param.maximum}
    elif param.kind == "array":
        item: dict[str, object] = {"type": "string", "maxLength": MAX_VALUE_LENGTH, "pattern": NO_NUL}
        if param.name == "group_by":
            item = {"type": "string", "enum": list(fields)}
        return {"type": "array", "items": item, "maxItems": 3 if param.name == "group_by" else MAX_VALUES}
    else:
        schema = {"type": "string", "maxLength": param.max_length}
        if param.enum:
            schema["enum"] = list(param.enum)
        schema["pattern"] = f"^(?:{param.pattern})$" if param.pattern else NO_NUL
    if param.default is not None:
        schema["default"] = param.default
    return schema


# The window is given one way or the other (resolve_window answers 400 to both): OpenAPI has no
# schema for a rule across parameters, so the descriptions say it, in words and in an extension.
EXCLUSIVE = {"range": "not with from/to: give a range or a from/to window (both: a 400)",
             "from": "not with range", "to": "not with range; needs from"}


def _parameters(endpoint: Endpoint, fields: Sequence[str]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    names = {p.name for p in endpoint.params}
    window = {"range", "from"} <= names
    for param in endpoint.params:
        description = param.description
        if window and param.name in EXCLUSIVE:
            description += f"; {EXCLUSIVE[param.name]}"
        entry: dict[str, object] = {"name": param.name, "in": param.location, "description": description,
                                    "required": param.location == "path", "schema": _schema(param, fields)}
        if window and param.name in EXCLUSIVE:
            entry["x-exclusive-with"] = ["from", "to"] if param.name == "range" else ["range"]
        if param.kind == "array":
            entry.update({"style": "form", "explode": True})
        out.append(entry)
    if endpoint.filters:
        for name in fields:
            out.append({"name": name, "in": "query", "required": False, "style": "form", "explode": True,
                        "description": f"only calls whose {name} is one of these values (repeatable, exact)",
                        "schema": {"type": "array", "items": {"type": "string", "maxLength": MAX_VALUE_LENGTH,
                                                              "pattern": NO_NUL},
                                   "maxItems": MAX_VALUES}})
    return out


def build_openapi(endpoints: Sequence[Endpoint], fields: Sequence[str], secured: bool) -> dict[str, object]:
    """The description of `endpoints`; `fields` are the filter and group_by fields of this ledger."""
    paths: dict[str, dict[str, object]] = {}
    for ep in endpoints:
        content: dict[str, object] = {}
        for media in ep.media:
            content[media] = {"schema": ep.schema if media == JSON else {"type": "string"}}
        responses: dict[str, object] = {"200": {"description": "OK", "content": content}}
        statuses = [s for s in ep.statuses if s != 401 or (secured and not ep.public)]
        if not secured and 403 not in statuses:  # the Host check of the open mode
            statuses = sorted([*statuses, 403])
        for status in statuses:
            responses[str(status)] = {"description": _REASONS[status],
                                      "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
        operation: dict[str, object] = {"operationId": ep.name, "summary": ep.summary,
                                        "parameters": _parameters(ep, fields), "responses": responses}
        if ep.public:
            operation["security"] = []
        paths.setdefault(ep.path, {})["get"] = operation
    doc: dict[str, object] = {
        "openapi": "3.1.0",
        "info": {"title": "genai-meter reports", "version": "1",
                 "description": "Reports, exports, activity, forecasts, budgets and advice from the usage ledger. "
                                "Money is USD as decimal strings (exact to 10^-12)."},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": {"Error": ERROR},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
    if secured:
        doc["security"] = [{"bearer": []}]
    return doc
