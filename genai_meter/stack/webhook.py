"""The demo's Alertmanager webhook receiver: prints one line per alert notification it gets."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY_BYTES = 4 * 1024 * 1024


def alert_line(alert: dict[str, Any]) -> str:
    """One alert as the demo prints it: status, severity, name, the budget and its threshold, summary."""
    labels = alert.get("labels", {})
    labels = labels if isinstance(labels, dict) else {}
    subject = " ".join(str(labels[key]) + ("%" if key == "threshold" else "")
                       for key in ("budget", "threshold") if key in labels)
    summary = alert.get("annotations", {}).get("summary", "") if isinstance(alert.get("annotations"), dict) else ""
    return (f"  alert {alert.get('status', '?'):8} {labels.get('severity', ''):8} {labels.get('alertname', '')}"
            f"{' ' + subject if subject else ''} — {summary}\n")


class AlertPrinter(BaseHTTPRequestHandler):
    """Alertmanager webhook receiver: prints one line per alert notification."""

    received: list[dict[str, Any]] = []
    lock = threading.Lock()  # one whole line per alert, whichever thread prints

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length", "0") or "0"
        size = int(length) if length.isascii() and length.isdigit() else 0
        body = self.rfile.read(min(size, MAX_BODY_BYTES))
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {}
        alerts = payload.get("alerts", []) if isinstance(payload, dict) else []
        for alert in alerts if isinstance(alerts, list) else []:
            if not isinstance(alert, dict):
                continue
            line = alert_line(alert)
            with self.lock:
                type(self).received.append(alert)
                sys.stdout.write(line)
                sys.stdout.flush()
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class Webhook:
    """The receiver on its own thread; `close()` stops it and frees the port (idempotent)."""

    def __init__(self, host: str, port: int) -> None:
        self.server = ThreadingHTTPServer((host, port), AlertPrinter)  # raises OSError if the port is taken
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="genai-meter-demo-webhook", daemon=True)
        self._thread.start()
        self._closed = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(2)
