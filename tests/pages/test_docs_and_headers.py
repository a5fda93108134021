"""/docs works offline, every page sends its security headers, and no page is in the API's
OpenAPI document (so schemathesis and the authorization matrix never post to a form)."""

from __future__ import annotations

import gzip
import json
import re

import pytest
from playwright.async_api import expect

from api.pages.security import PAGE_CSP
from tests.pages.conftest import Site, Watched
from tests.pages.test_console import serious

PAGES = ["/docs", "/console/sign-in", "/demo/checkout", "/widget/v1/coverline.js", "/portal/nonsense.1.x"]

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_docs_lists_the_operations_from_assets_the_app_serves(site: Site, watched: Watched) -> None:
    requested: list[str] = []
    watched.page.on("request", lambda r: requested.append(r.url))
    await watched.page.goto(site.base + "/docs")
    await expect(watched.page.locator(".opblock-summary-path").first).to_be_visible(timeout=15000)
    paths = await watched.page.locator(".opblock-summary-path").all_inner_texts()
    assert "/v1/entitlements" in paths
    assert "/v1/checkouts" in paths
    assert all(url.startswith(site.base) for url in requested), [
        u for u in requested if not u.startswith(site.base)
    ]
    assert watched.errors == []  # no CSP violation, no script error
    assert await serious(watched.page) == []


async def test_every_page_sends_the_security_headers(site: Site) -> None:
    for path in PAGES:
        answer = site.http.get(path)
        assert answer.headers["content-security-policy"] == PAGE_CSP, path
        assert "'unsafe-inline'" not in answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
    assert site.http.get("/portal/nonsense.1.x").headers["referrer-policy"] == "no-referrer"
    assert site.http.get("/console/sign-in").headers["referrer-policy"] == "same-origin"


async def test_no_page_writes_an_inline_script_or_style(site: Site) -> None:
    for path in ["/docs", "/console/sign-in", "/demo/checkout?lang=ar"]:
        html = site.http.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert "<style" not in html and " style=" not in html, path


async def test_pages_stay_out_of_the_openapi_document(site: Site) -> None:
    paths = json.loads(site.http.get("/docs/openapi.json").text)["paths"]
    assert all(p.startswith(("/v1/", "/health", "/ready")) for p in paths), sorted(paths)


async def test_static_assets_are_versioned_and_cached_for_a_year(site: Site) -> None:
    html = site.http.get("/console/sign-in").text
    [css] = re.findall(r'href="(/static/pages\.css\?v=[0-9a-f]{12})"', html)
    answer = site.http.get(css)
    assert answer.status_code == 200
    assert "max-age=31536000" in answer.headers["cache-control"]


async def test_the_widget_is_small_cached_and_carries_its_words(site: Site) -> None:
    answer = site.http.get("/widget/v1/coverline.js")
    assert answer.headers["content-type"] == "text/javascript; charset=utf-8"  # said once
    assert answer.headers["access-control-allow-origin"] == "*"  # a merchant may load it with crossorigin
    assert answer.headers["content-encoding"] == "gzip"  # as every browser asks for it
    assert len(answer.content) > 2 * int(answer.headers["content-length"])  # the bytes sent, unzipped
    for refused in ("identity", "gzip;q=0", "br, *;q=0"):
        plain = site.http.get("/widget/v1/coverline.js", headers={"accept-encoding": refused})
        assert "content-encoding" not in plain.headers and plain.content == answer.content
        assert plain.headers["etag"] != answer.headers["etag"]  # each representation its own
    assert len(gzip.compress(answer.content, 9)) <= 15 * 1024
    assert "/*COVERLINE_TEXTS*/" not in answer.text
    assert "set-cookie" not in answer.headers
    again = site.http.get("/widget/v1/coverline.js", headers={"if-none-match": answer.headers["etag"]})
    assert again.status_code == 304
