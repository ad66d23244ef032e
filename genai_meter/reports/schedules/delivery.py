"""Delivering one rendered slot: a file in the schedule's directory and/or a POST to its webhook.

Only a 2xx answer is a delivery. Redirects are not followed: a 3xx is a failed attempt naming the
status (following one would turn the POST into a GET to wherever it points and count that as done).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from typing import IO

from genai_meter.config import Config, ScheduleConfig
from genai_meter.periods import NS

WEBHOOK_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Output:
    """One rendered run: the body, its media type and the file extension."""

    body: bytes
    media_type: str
    extension: str


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Leaves every 3xx unanswered, so the opener raises it as an `HTTPError`."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Message,
                         newurl: str) -> urllib.request.Request | None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def post(url: str, body: bytes, headers: dict[str, str]) -> None:
    """POST `body`; raises OSError naming the status unless the answer is 2xx."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _OPENER.open(request, timeout=WEBHOOK_TIMEOUT_S) as answer:
            if not 200 <= answer.status < 300:
                raise OSError(f"webhook answered {answer.status}")
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            raise OSError(f"webhook answered {exc.code} (a redirect to {exc.headers.get('Location', '?')[:200]!r}; "
                          "redirects are not followed: set webhook_url to the final address)") from None
        raise OSError(f"webhook answered {exc.code}") from None


def deliver(schedule: ScheduleConfig, config: Config, slot_ns: int, output: Output) -> None:
    """Write the file and/or POST the webhook; raises on failure (the caller retries)."""
    stamp = datetime.fromtimestamp(slot_ns // NS, UTC).strftime("%Y%m%dT%H%MZ")
    if schedule.directory is not None:
        folder = config.resolve_path(schedule.directory)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{schedule.name}-{stamp}.{output.extension}"
        tmp = target.with_suffix(target.suffix + f".{os.getpid()}.tmp")
        tmp.write_bytes(output.body)
        os.replace(tmp, target)
    if schedule.webhook_url is not None:
        post(schedule.webhook_url, output.body, {
            "Content-Type": output.media_type, "Idempotency-Key": f"{schedule.name}-{slot_ns}",
            "User-Agent": "genai-meter-reports", "X-Genai-Meter-Schedule": schedule.name})
