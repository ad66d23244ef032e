"""The floor both generators stand on: recording rule names, PromQL text helpers, dashboard links.

`dashboards/` and `alert_rules/` both read this package and never each other, so a rule renamed
here is renamed in every panel that reads it.
"""

from genai_meter.promql.links import PanelRef, panel_url
from genai_meter.promql.names import RuleNames
from genai_meter.promql.text import by, matchers, num, quote, selector

__all__ = ["PanelRef", "RuleNames", "by", "matchers", "num", "panel_url", "quote", "selector"]
