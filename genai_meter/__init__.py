"""genai-meter: LLM usage and cost metrics from OpenTelemetry spans."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("genai-meter")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
