"""The page's HTML frames and static files through the real Flask app (no browser): no data in the HTML,
script-safe config, a strict CSP, the vendored chart library and its licence served from the package."""

from __future__ import annotations

import json
import re
from pathlib import Path

from genai_meter.ledger import open_reader
from genai_meter.reports.service.app import create_app
from genai_meter.reports.web import PREFERRED, filter_fields
from tests.web.site import build_calls, make_config, write_calls

NOW_NS = 1_790_000_000 * 10**9


def _app(tmp: Path):  # type: ignore[no-untyped-def]
    config = make_config(tmp)
    write_calls(config, build_calls(NOW_NS, n=20))
    assert config.ledger.url is not None
    reader = open_reader(config.ledger.url, config)
    return create_app(config, reader), reader


def test_every_page_renders_a_frame_with_a_strict_csp(tmp_path: Path) -> None:
    app, reader = _app(tmp_path)
    try:
        client = app.test_client()
        for path in ("/", "/activity", "/conversations", "/conversations/conv-acme", "/budgets", "/reports"):
            r = client.get(path)  # no token needed for the frame: it holds no data
            assert r.status_code == 200 and r.mimetype == "text/html", path
            assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")
            html = r.get_data(as_text=True)
            assert "cust-alpha" not in html and "$" not in re.sub(r"<script.*?</script>", "", html, flags=re.S)
            config = json.loads(re.search(r'<script id="page-config" type="application/json">(.*?)</script>',
                                          html, re.S).group(1))  # type: ignore[union-attr]
            assert config["tokens_required"] is True
            assert config["fields"][:4] == ["organization", "service", "model", "provider"]
            assert "/static/vendor/chart.umd.min.js" in html and "http" not in html.split("<footer")[0]
        r = client.get("/conversations/x</script><script>alert(1)</script>")
        html = r.get_data(as_text=True)
        assert "<script>alert(1)" not in html and "\\u003c/script\\u003e" in html
        assert client.get("/static/vendor/chart.umd.min.js").data.startswith(b"/*!\n * Chart.js v4.6.1")
        assert b"MIT License" in client.get("/static/vendor/chart.js.LICENSE.md").data
        for name in ("app.js", "charts.js", "overview.js", "activity.js", "conversations.js", "budgets.js",
                     "reports.js", "style.css"):
            body = client.get(f"/static/{name}").get_data(as_text=True)
            assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", body), name  # nothing from elsewhere
        assert client.get("/api/v1/reports/summary").status_code == 401  # the data still needs the token
    finally:
        reader.close()


def test_filter_fields_put_the_portal_dimensions_first() -> None:
    fields = ("service", "environment", "provider", "model", "request_model", "operation", "status", "error_type",
              "conversation", "user", "customer", "feature", "organization", "project")
    assert filter_fields(fields) == [*PREFERRED, "environment", "operation", "status"]
    assert filter_fields(("service", "model")) == ["service", "model"]
