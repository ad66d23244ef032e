"""The example Alertmanager config: severity routes to webhooks, budgets grouped and inhibited.

`build_alertmanager(config, webhook_url=...)` returns the config as data; `render_alertmanager`
adds the header and a commented Slack / e-mail example (YAML comments cannot live in data).
"""

from __future__ import annotations

from typing import Any

from genai_meter.config import Config

DEFAULT_WEBHOOK_URL = "http://127.0.0.1:9099/alerts"  # replace with your receiver
SEVERITIES = ("critical", "warning", "info")

# Budget crossings: wait briefly so simultaneous thresholds arrive as one notification, tell
# about a new crossing of the same budget within minutes, and repeat a standing one once a day.
BUDGET_TIMING = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "24h"}
REPEAT_BY_SEVERITY = {"critical": "1h", "warning": "4h", "info": "24h"}

SLACK_EMAIL_EXAMPLE = """\
# Slack and e-mail: add these next to (or instead of) webhook_configs in a receiver above,
# for example in `critical`:
#
#    slack_configs:
#      - api_url_file: /etc/alertmanager/secrets/slack-webhook-url
#        channel: '#llm-cost'
#        send_resolved: true
#        title: '{{ .CommonLabels.alertname }} {{ .CommonLabels.budget }}'
#        text: >-
#          {{ range .Alerts }}{{ .Annotations.summary }} {{ .Annotations.description }}
#          Dashboard: {{ .Annotations.dashboard_url }} Runbook: {{ .Annotations.runbook_url }}{{ "\\n" }}{{ end }}
#    email_configs:
#      - to: finops@example.com
#        from: alertmanager@example.com
#        smarthost: smtp.example.com:587
#        auth_username: alertmanager@example.com
#        auth_password_file: /etc/alertmanager/secrets/smtp-password
#        send_resolved: true
"""


def _webhook(url: str) -> dict[str, Any]:
    return {"webhook_configs": [{"url": url, "send_resolved": True, "max_alerts": 0}]}


def build_alertmanager(config: Config, webhook_url: str = DEFAULT_WEBHOOK_URL) -> dict[str, Any]:
    """The Alertmanager config for `config`; receivers post to `webhook_url` + `/<receiver>`."""
    del config  # the routes depend on label names only, which the contract fixes
    base = webhook_url.rstrip("/")
    by_severity = [
        {"receiver": sev, "matchers": [f'severity="{sev}"'], "repeat_interval": REPEAT_BY_SEVERITY[sev]}
        for sev in SEVERITIES
    ]
    budget_routes = [{"receiver": sev, "matchers": [f'severity="{sev}"']} for sev in SEVERITIES]
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": "default",
            "group_by": ["alertname", "service_name", "environment"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {"receiver": "watchdog", "matchers": ['alertname="LLMWatchdog"'],
                 "group_by": ["alertname"], "group_wait": "0s", "group_interval": "1m",
                 "repeat_interval": "5m"},
                {"matchers": ['budget=~".+"'], "group_by": ["budget"], **BUDGET_TIMING,
                 "routes": budget_routes},
                *by_severity,
            ],
        },
        "inhibit_rules": [
            # A higher threshold of the same budget silences the lower ones.
            {"source_matchers": ['severity="critical"', 'budget=~".+"'],
             "target_matchers": ['severity=~"warning|info"', 'budget=~".+"'],
             "equal": ["budget"]},
            {"source_matchers": ['severity="warning"', 'budget=~".+"'],
             "target_matchers": ['severity="info"', 'budget=~".+"'],
             "equal": ["budget"]},
            {"source_matchers": ['alertname="LLMBudgetExceeded"'],
             "target_matchers": ['alertname=~"LLMBudgetThresholdReached|LLMBudgetExhaustionForecast"'],
             "equal": ["budget"]},
            # Nothing else about the meter matters while it cannot be scraped.
            {"source_matchers": ['alertname=~"LLMMeterDown|LLMMeterAbsent"'],
             "target_matchers": ['alertname="LLMBudgetLimitMissing"']},
        ],
        "receivers": [
            {"name": "default", **_webhook(f"{base}/default")},
            *({"name": sev, **_webhook(f"{base}/{sev}")} for sev in SEVERITIES),
            {"name": "watchdog", **_webhook(f"{base}/watchdog")},
        ],
    }
