"""Sections of `pricing` in the config that stand on their own: batch rules (docs/pricing.md)."""

from __future__ import annotations

from pydantic import model_validator

from genai_meter.config_base import Section


class BatchMatch(Section):
    """What a batch rule matches (all given conditions must hold). Values are shell-style globs (`*`, `?`,
    `[...]`), matched case-sensitively against the whole value."""

    service: str | None = None  # the service name (resource_keys.service)
    environment: str | None = None  # the environment (resource_keys.environment)
    attributes: dict[str, str] = {}  # attribute key -> glob; read from the span, else its resource

    @model_validator(mode="after")
    def _not_empty(self) -> BatchMatch:
        if self.service is None and self.environment is None and not self.attributes:
            raise ValueError("a batch rule needs service, environment or attributes to match")
        return self


class BatchRule(Section):
    """Calls that go through a batch API, told by where they come from (pricing.batch_rules)."""

    match: BatchMatch
