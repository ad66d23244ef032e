"""A loopback stand-in for the providers' admin APIs (the paid endpoints), serving documented pages.

    server = AdminServer()
    server.route("/v1/organization/costs", [page1, page2])  # page N+1 answers ?page=<page N's next_page>
    server.script("/v1/organization/costs", [(429, {"Retry-After": "2"}, b"")])  # answered first, in order
    base_url = server.start()                                # "http://127.0.0.1:PORT"
    ...
    server.stop()

A path's pages are a list: a request without `page` gets the first, a request with `page=TOKEN`
gets the page after the one whose `next_page` is TOKEN. Scripted answers (status, headers, body)
are used up one per request before the pages; `delay_s` holds the next answers that long first.
`requests` records (path, query as a dict of lists, headers) of every request. One daemon thread
per request (stdlib ThreadingHTTPServer); the test that starts it stops it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

Answer = tuple[int, dict[str, str], bytes]


class AdminServer:
    def __init__(self) -> None:
        self.pages: dict[str, list[object]] = {}
        self.scripted: dict[str, list[Answer]] = defaultdict(list)
        self.delays: dict[str, list[float]] = defaultdict(list)
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def route(self, path: str, pages: list[object]) -> None:
        self.pages[path] = pages

    def script(self, path: str, answers: list[Answer]) -> None:
        self.scripted[path].extend(answers)

    def delay(self, path: str, seconds: float, times: int = 1) -> None:
        self.delays[path].extend([seconds] * times)

    def paths(self) -> list[str]:
        with self._lock:
            return [path for path, _, _ in self.requests]

    def _answer(self, path: str, query: dict[str, list[str]]) -> Answer:
        with self._lock:
            if self.scripted[path]:
                return self.scripted[path].pop(0)
            pages = self.pages.get(path)
        if pages is None:
            return 404, {}, json.dumps({"error": {"message": f"no route {path}"}}).encode()
        token = query.get("page", [None])[0]
        index = 0
        if token is not None:
            index = next((i + 1 for i, page in enumerate(pages)
                          if isinstance(page, dict) and page.get("next_page") == token), -1)
            if index < 0:
                return 400, {}, json.dumps({"error": {"message": f"unknown page {token}"}}).encode()
        return 200, {"Content-Type": "application/json"}, json.dumps(pages[index]).encode()

    def start(self) -> str:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                with owner._lock:
                    owner.requests.append((parts.path, query, {k.lower(): v for k, v in self.headers.items()}))
                    wait = owner.delays[parts.path].pop(0) if owner.delays[parts.path] else 0.0
                if wait:
                    time.sleep(wait)
                status, headers, body = owner._answer(parts.path, query)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
