"""A loopback webhook server for schedule tests: records what it receives and answers as told."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hook:
    """Answers each POST with `answer()` (a status, and a Location for redirects); the first `fail`
    POSTs get 500. `received` holds (Idempotency-Key, body) of the POSTs answered 2xx; `gets` the paths
    of any GET (a followed redirect)."""

    def __init__(self, fail: int = 0, answer: Callable[[], int] | None = None) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.posts = 0
        self.gets: list[str] = []
        self.fail = fail
        self.answer = answer or (lambda: 200)
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts += 1
                status = 500 if hook.fail > 0 else hook.answer()
                hook.fail -= hook.fail > 0
                if 200 <= status < 300:
                    hook.received.append((self.headers["Idempotency-Key"], body))
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"http://127.0.0.1:{hook.server.server_port}/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                hook.gets.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
