"""A small OpenAI-compatible HTTP server on loopback, for tests that run real OpenAI clients.

    server = FakeOpenAI(prompt_tokens=1200, cached_tokens=0)
    base_url = server.start()          # "http://127.0.0.1:PORT/v1"
    client = openai.OpenAI(base_url=base_url, api_key="test")
    ...
    server.fail_next(429)              # the next request answers HTTP 429
    server.stop()

Or as a context manager: ``with FakeOpenAI() as server: ...`` (starts and stops it).

Endpoints: ``POST /v1/chat/completions`` (plain, or streamed as server-sent events when the body has
``"stream": true``; a final usage chunk is sent when ``stream_options.include_usage`` is true, as
OpenAI does), ``POST /v1/embeddings`` and ``POST /v1/images/generations``. The response echoes the
request's model (unless ``response_model`` is set) and reports the configured usage, with
``prompt_tokens_details.cached_tokens`` / ``audio_tokens`` and ``completion_tokens_details.reasoning_tokens``
/ ``audio_tokens`` (audio tokens only for a model whose name says ``audio``, as OpenAI's audio models
report them; parts of the prompt and completion tokens), and the ``service_tier`` the call was served at,
as OpenAI answers it: the one asked for, ``default`` for none or ``auto``. Embeddings report
``prompt_tokens`` as their usage; image generation answers one image URL per image asked for (``n``).

``fail_next`` makes the next requests fail; ``failing_models`` makes every request for a model fail
(handy when the client runs in another process). Error answers carry OpenAI's error body and ``x-should-retry: false``, so the openai SDK does not
retry them. The server runs in one daemon thread per request (stdlib ``ThreadingHTTPServer``); the
test that calls ``start()`` owns it and must call ``stop()``. ``requests`` lists every request
received as ``(path, parsed JSON body)``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_CONTENT = ("Hello", " from", " the", " fake", " server.")


class FakeOpenAI:
    """An OpenAI-compatible server with fixed usage numbers. Not thread-safe to reconfigure while serving."""

    def __init__(self, *, prompt_tokens: int = 10000, cached_tokens: int = 4000,
                 completion_tokens: int = 2000, reasoning_tokens: int = 500,
                 response_model: str | None = None, chunk_delay_s: float = 0.0,
                 failing_models: dict[str, int] | None = None, audio_prompt_tokens: int = 3000,
                 audio_completion_tokens: int = 1000) -> None:
        self.prompt_tokens = prompt_tokens  # includes cached_tokens, as OpenAI reports it
        self.cached_tokens = cached_tokens
        self.completion_tokens = completion_tokens  # includes reasoning_tokens, as OpenAI reports it
        self.reasoning_tokens = reasoning_tokens
        self.audio_prompt_tokens = audio_prompt_tokens  # parts of the prompt / completion of audio models
        self.audio_completion_tokens = audio_completion_tokens
        self.response_model = response_model  # None: echo the request's model
        self.chunk_delay_s = chunk_delay_s  # pause between streamed chunks (time-to-first-token tests)
        self.failing_models = dict(failing_models or {})  # model -> HTTP status, for every request naming it
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._failures: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifetime -------------------------------------------------------------------------------

    def start(self) -> str:
        """Listen on an ephemeral loopback port; returns the base URL (``http://127.0.0.1:PORT/v1``)."""
        if self._server is not None:
            return self.base_url
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and close the socket. Safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port; only valid after `start`."""
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The OpenAI base URL to give a client (ends in ``/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- behaviour ------------------------------------------------------------------------------

    def fail_next(self, status: int = 500, times: int = 1, message: str = "injected failure") -> None:
        """Answer the next `times` requests with HTTP `status` and an OpenAI error body."""
        with self._lock:
            self._failures.extend([(status, message)] * times)

    def usage(self, model: str = "") -> dict[str, Any]:
        """The chat usage object a completion of `model` reports (audio tokens for audio models)."""
        audio = "audio" in model
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens,
                                      "audio_tokens": self.audio_prompt_tokens if audio else 0},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens,
                                          "audio_tokens": self.audio_completion_tokens if audio else 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        }

    def _take_failure(self) -> tuple[int, str] | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _record(self, path: str, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append((path, body))


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI  # set on the per-server subclass
    server_version = "FakeOpenAI/1.0"

    def log_message(self, format: str, *args: object) -> None:
        """Silence the default stderr access log."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send_json(400, _error_body("request body is not JSON", "invalid_request_error"))
            return
        path = self.path.split("?", 1)[0]
        self.fake._record(path, body)
        failure = self.fake._take_failure()
        if failure is None and body.get("model") in self.fake.failing_models:
            failure = (self.fake.failing_models[body["model"]], f"model {body['model']} fails on purpose")
        if failure is not None:
            status, message = failure
            kind = "rate_limit_error" if status == 429 else "server_error"
            self._send_json(status, _error_body(message, kind), {"x-should-retry": "false"})
            return
        if path.endswith("/chat/completions"):
            if body.get("stream"):
                self._stream_chat(body)
            else:
                self._send_json(200, self._chat(body))
        elif path.endswith("/embeddings"):
            self._send_json(200, self._embeddings(body))
        elif path.endswith("/images/generations"):
            self._send_json(200, self._images(body))
        else:
            self._send_json(404, _error_body(f"unknown path {path}", "invalid_request_error"))

    def _model(self, body: dict[str, Any]) -> str:
        return self.fake.response_model or str(body.get("model") or "unknown-model")

    @staticmethod
    def _tier(body: dict[str, Any]) -> str:
        """The tier OpenAI answers with: the one asked for; `default` for none or `auto`."""
        tier = body.get("service_tier")
        return "default" if tier in (None, "auto") else str(tier)

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake-1",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self._model(body),
            "system_fingerprint": "fp_fake",
            "service_tier": self._tier(body),
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": "".join(_CONTENT), "refusal": None}}],
            "usage": self.fake.usage(self._model(body)),
        }

    def _stream_chat(self, body: dict[str, Any]) -> None:
        model = self._model(body)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {"id": "chatcmpl-fake-1", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": model, "system_fingerprint": "fp_fake", "service_tier": self._tier(body)}
        chunks: list[dict[str, Any]] = [
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
        chunks += [{**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
                   for text in _CONTENT]
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if include_usage:
            chunks.append({**base, "choices": [], "usage": self.fake.usage(model)})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.flush()
            if self.fake.chunk_delay_s:
                time.sleep(self.fake.chunk_delay_s)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body.get("input")
        count = len(inputs) if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else 1
        return {
            "object": "list",
            "model": self._model(body),
            "data": [{"object": "embedding", "index": i, "embedding": [0.0, 0.1, 0.2]} for i in range(count)],
            "usage": {"prompt_tokens": self.fake.prompt_tokens, "total_tokens": self.fake.prompt_tokens},
        }

    def _images(self, body: dict[str, Any]) -> dict[str, Any]:
        count = body.get("n") if isinstance(body.get("n"), int) and body["n"] > 0 else 1
        return {"created": int(time.time()),
                "data": [{"url": f"https://images.invalid/fake-{i}.png", "revised_prompt": None} for i in range(count)]}

    def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


def _error_body(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}
