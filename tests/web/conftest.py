"""Fixtures of the page tests: the report service with the page on 127.0.0.1, and Debian's headless Chromium.

Every browser page records its console errors, uncaught exceptions and request URLs; `Browse.check()`
fails the test on any of them, and on any request that leaves 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.web.site import (
    ADMIN_TOKEN,
    IDLE_WEEKS_MODEL,
    Known,
    Site,
    build_calls,
    demo_calls,
    demo_config,
    make_call,
    make_config,
    write_any,
    write_calls,
)


def chromium_path() -> str:
    """Debian's Chromium (installed by `make system-deps`); the tests need a real browser."""
    for name in ("chromium", "chromium-headless-shell", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    for path in ("/usr/lib/chromium/chromium", "/usr/lib/chromium/headless_shell"):
        if Path(path).is_file():
            return path
    raise AssertionError("no Chromium found: run `make system-deps` (apt-get install chromium)")


@dataclass
class Served:
    site: Site
    known: Known
    now_ns: int

    @property
    def url(self) -> str:
        return self.site.url


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("web")
    config = make_config(tmp)
    now_ns = time.time_ns()
    known = write_calls(config, build_calls(now_ns))
    # a model last used 20 days ago: zero requests at 7d, listed at 0 (outside `known`: before every range tested)
    idle = dataclasses.replace(make_call(4000, now_ns - 20 * 86400 * 10**9, random.Random(3)), model=IDLE_WEEKS_MODEL,
                               request_model=IDLE_WEEKS_MODEL)
    write_calls(config, [idle], Known())
    site = Site(config)
    yield Served(site, known, now_ns)
    site.close()


@pytest.fixture(scope="module")
def demo_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The demo's budget after a minute of the demo's traffic (a quarter used, 100 % three minutes ahead),
    with unpriced calls and calls whose cache tokens are unknown."""
    tmp = tmp_path_factory.mktemp("demo-web")
    config = demo_config(tmp)
    now_ns = time.time_ns()
    write_any(config, demo_calls(now_ns))
    site = Site(config)
    yield Served(site, Known(), now_ns)
    site.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@dataclass
class Browse:
    """One browser page with what it logged and asked for."""

    page: Page
    base: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def open(self, path: str) -> Page:
        self.page.goto(self.base + path)
        self.page.wait_for_load_state("networkidle")
        return self.page

    def check(self) -> None:
        outside = [u for u in self.requests if not (u.startswith(self.base + "/") or u.startswith("blob:http://127.0.0.1")
                                                    or u.startswith("data:"))]
        assert outside == [], f"requests that leave the machine: {outside}"
        assert self.errors == [], f"console errors: {self.errors}"


def browse(browser: Browser, base: str, token: str = ADMIN_TOKEN, width: int = 1280, height: int = 900) -> Browse:
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    if token:
        context.add_init_script(f"sessionStorage.setItem('genai-meter-token', {token!r})")
    page = context.new_page()
    b = Browse(page, base)
    page.on("console", lambda m: b.errors.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: b.errors.append(f"pageerror: {e}"))
    page.on("request", lambda r: b.requests.append(r.url))
    return b


@pytest.fixture()
def admin(browser: Browser, served: Served) -> Iterator[Browse]:
    b = browse(browser, served.url)
    yield b
    b.check()
    b.page.context.close()
