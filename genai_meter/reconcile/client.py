"""GET JSON from a provider's admin API: bounded retries, rate limits honoured, one overall deadline.

`AdminClient(provider, base_url, headers, limits)` keeps the deadline of the whole pull. `get_json`
answers 429 by waiting `Retry-After` (seconds or an HTTP date; backoff when absent), 5xx, timeouts
and dropped connections by exponential backoff (0.5 s doubling, at most 30 s; a 5xx's Retry-After
wins), each at most `limits.max_retries` times; a wait that would pass the deadline fails at once.
Any other status is a `PullError` with the provider's own message. The admin key travels in
`headers` and is never part of a message; redirects are not followed (they would carry the key to
another address).
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.message import Message
from email.utils import parsedate_to_datetime
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import HTTPRedirectHandler, OpenerDirector, Request, build_opener

from genai_meter import __version__
from genai_meter.reconcile.lines import ReconcileError

MAX_BODY = 64 * 1024 * 1024
MAX_BACKOFF_S = 30.0


class PullError(ReconcileError):
    """A report that could not be fetched; the message names the provider, the endpoint and why."""


@dataclass(frozen=True, slots=True)
class Limits:
    timeout_s: float = 30.0  # one request
    deadline_s: float = 600.0  # the whole pull
    max_retries: int = 5  # per request


def backoff(attempt: int) -> float:
    """The wait before retry number `attempt` (0-based) of a failed request."""
    return min(MAX_BACKOFF_S, 0.5 * 2.0 ** min(attempt, 16))


def retry_after(headers: Message | None, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta seconds or an HTTP date); None when absent or bad."""
    value = (headers.get("Retry-After") if headers is not None else None) or ""
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, (at - (now or datetime.now(UTC))).total_seconds())


def _message(exc: HTTPError) -> str:
    """The provider's error message (OpenAI and Anthropic: error.message), else the body's start."""
    try:
        raw = exc.read(64 * 1024)
    except (OSError, http.client.HTTPException):
        raw = b""
    text = raw.decode("utf-8", "replace")
    try:
        error = json.loads(text).get("error")
        found = error.get("message") if isinstance(error, dict) else error
        if isinstance(found, str) and found:
            text = found
    except (ValueError, AttributeError):
        pass
    text = " ".join(text.split())
    return (text[:200] + "...") if len(text) > 200 else (text or exc.reason or "no message")


class _NoRedirect(HTTPRedirectHandler):
    """Refuses redirects: the 3xx answer is then an HTTPError like any other status."""

    def redirect_request(self, req: Request, fp: object, code: int, msg: str, headers: object,
                         newurl: str) -> Request | None:
        return None


class AdminClient:
    """GET requests to one provider's admin API within one deadline."""

    def __init__(self, provider: str, base_url: str, headers: dict[str, str], limits: Limits, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.headers = {"Accept": "application/json", "User-Agent": f"genai-meter/{__version__}", **headers}
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._deadline = clock() + limits.deadline_s
        self._opener: OpenerDirector = build_opener(_NoRedirect)
        self.requests = 0  # requests sent, retries included

    def url(self, path: str) -> str:
        return self.base_url + path

    def get_json(self, path: str, params: Sequence[tuple[str, str]]) -> object:
        """The parsed JSON answer (numbers as exact decimals) of GET `path`?`params`."""
        url = self.url(path) + ("?" + urlencode(list(params)) if params else "")
        where = f"{self.provider}: GET {path}"
        failures = 0
        while True:
            remaining = self._deadline - self._clock()
            if remaining <= 0:
                raise PullError(f"{where}: no answer within the deadline ({self.limits.deadline_s:g} s)")
            wait, reason = self._attempt(url, min(self.limits.timeout_s, remaining), where, failures)
            if reason is None:
                return wait
            failures += 1
            assert isinstance(wait, float)
            if failures > self.limits.max_retries:
                raise PullError(f"{where}: {reason}, {failures} times: giving up")
            if wait >= self._deadline - self._clock():
                raise PullError(f"{where}: {reason}: a retry in {wait:g} s would pass the deadline "
                                f"({self.limits.deadline_s:g} s)")
            self._sleep(wait)

    def _attempt(self, url: str, timeout: float, where: str, failures: int) -> tuple[object, str | None]:
        """(answer, None) on success, else (seconds to wait, why) for a failure worth a retry."""
        self.requests += 1
        backoff_s = backoff(failures)
        try:
            with self._opener.open(Request(url, headers=self.headers), timeout=timeout) as answer:
                body = answer.read(MAX_BODY + 1)
        except HTTPError as exc:
            if exc.code == 429:
                waited = retry_after(exc.headers)
                exc.close()
                return (backoff_s if waited is None else waited), "HTTP 429 (rate limited)"
            if exc.code >= 500:
                waited = retry_after(exc.headers)
                exc.close()
                return (backoff_s if waited is None else waited), f"HTTP {exc.code}"
            message = _message(exc)
            exc.close()
            raise PullError(f"{where}: HTTP {exc.code}: {message}") from None
        except TimeoutError:
            return backoff_s, f"no answer within {timeout:g} s"
        except URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                return backoff_s, f"no answer within {timeout:g} s"
            return backoff_s, f"cannot connect ({exc.reason})"
        except (ConnectionError, http.client.HTTPException) as exc:
            return backoff_s, f"connection dropped ({type(exc).__name__})"
        if len(body) > MAX_BODY:
            raise PullError(f"{where}: answer larger than {MAX_BODY // 2**20} MiB")
        try:
            return json.loads(body.decode("utf-8"), parse_float=Decimal), None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise PullError(f"{where}: the answer is not JSON") from None
