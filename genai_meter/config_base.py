"""The base of every configuration section, and the error a bad configuration raises."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

UTC_OFFSET = re.compile(r"^[+-]\d{2}:\d{2}$")  # a utc_offset setting: +HH:MM or -HH:MM


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names file, key and expectation."""


class Section(BaseModel):
    """A configuration section: unknown keys are errors, values are frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)
