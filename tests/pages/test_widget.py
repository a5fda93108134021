"""The checkout widget, in Chromium: a shopper picks a plan in Arabic on the demo merchant's page
and pays on the sandbox's page; on a merchant page of another origin whose Content-Security-Policy
allows only Coverline's origin, it renders, styles itself and raises its event."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.async_api import BrowserContext, expect

from tests.pages.conftest import Site, Watched
from tests.pages.test_console import serious

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_shopper_picks_a_plan_in_arabic_and_completes_the_sandbox_checkout(
    site: Site, watched: Watched
) -> None:
    page = watched.page
    await page.goto(site.base + "/demo/checkout?lang=ar")
    await expect(page.locator("html")).to_have_attribute("dir", "rtl")
    widget = page.locator("coverline-offers")
    options = widget.get_by_role("radio")
    await expect(options.first).to_be_visible(timeout=10000)
    wrapper = widget.locator("[dir]").first
    await expect(wrapper).to_have_attribute("dir", "rtl")
    await expect(wrapper).to_have_attribute("lang", "ar")
    legend = await widget.locator("legend").inner_text()
    assert any("\u0600" <= ch <= "\u06ff" for ch in legend), legend  # the widget's own words, in Arabic
    none = widget.get_by_role("radio").last
    await expect(none).to_be_checked()  # no protection until the shopper picks one
    plan = options.first
    await plan.check()
    token = await page.locator("#offer-token").input_value()
    assert token, "the chosen offer's token reached the merchant's form"
    email = f"shopper-{secrets.token_hex(4)}@example.com"
    await page.locator("input[name=name]").fill("ليلى أحمد")
    await page.locator("input[name=email]").fill(email)
    await page.locator("form#order button[type=submit]").click()
    await expect(page).to_have_url(re.compile(r"/sandbox/checkout/"))
    await expect(page.locator("html")).to_have_attribute("lang", "ar")
    await page.locator("form button[type=submit]").click()
    await expect(page).to_have_url(re.compile(r"/demo/checkout/done"))
    [customer] = site.api("GET", f"/v1/customers?email={email}", "checkout")["data"]
    answer = site.api("GET", f"/v1/entitlements?customer_id={customer['id']}", "support")
    assert answer["covered"] is True
    assert watched.errors == []


async def test_a_declined_card_on_the_sandbox_page_can_be_retried(site: Site, watched: Watched) -> None:
    page = watched.page
    await page.goto(site.base + "/demo/checkout?lang=en")
    widget = page.locator("coverline-offers")
    await widget.get_by_role("radio").first.check()
    await page.get_by_label("Your name").fill("Retry Shopper")
    await page.get_by_role("button", name="Place the order").click()
    await page.get_by_label("A card that is declined").check()
    await page.get_by_role("button", name="Pay").click()
    await expect(page.get_by_role("alert")).to_contain_text("declined")
    await page.get_by_label("A card that pays").check()
    await page.get_by_role("button", name="Pay").click()
    await expect(page.get_by_role("heading", name="Thank you")).to_be_visible()


async def test_the_demo_checkout_has_no_serious_accessibility_violation(site: Site, watched: Watched) -> None:
    for lang in ("en", "ar"):
        await watched.page.goto(f"{site.base}/demo/checkout?lang={lang}")
        await expect(watched.page.locator("coverline-offers").get_by_role("radio").first).to_be_visible(
            timeout=10000
        )
        assert await serious(watched.page) == [], lang


@pytest.fixture
def merchant(site: Site) -> Iterator[str]:
    """Another origin's product page: Coverline's origin allowed in script-src and connect-src,
    nothing inline, no style source at all."""
    page = f"""<!doctype html><html lang="sv"><head><meta charset="utf-8"><title>Butik</title></head>
<body><h1>Telefon X55</h1>
<coverline-offers publishable-key="{site.keys["publishable"]}" category="phone" sku="PH-DEMO-X55"
  price="699900" currency="SEK" country="SE" locale="sv"></coverline-offers>
<script src="{site.base}/widget/v1/coverline.js"></script>
</body></html>""".encode()
    policy = f"default-src 'none'; script-src {site.base}; connect-src {site.base}; style-src 'none'"

    class Shop(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-security-policy", policy)
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


async def test_the_widget_works_under_a_merchants_strict_policy(
    merchant: str, context: BrowserContext
) -> None:
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    await page.goto(merchant)
    await page.evaluate(
        "window.chosen = []; document.addEventListener('coverline-offer-selected', e => window.chosen.push(e.detail.offer))"
    )
    widget = page.locator("coverline-offers")
    first = widget.get_by_role("radio").first
    await expect(first).to_be_visible(timeout=10000)
    await first.check()
    chosen = await page.evaluate("window.chosen")
    assert chosen and chosen[-1]["offer_token"]  # bubbled out of the shadow root to the document
    assert chosen[-1]["price"]["currency"] == "SEK"
    border = await widget.locator(".o").first.evaluate("e => getComputedStyle(e).borderTopStyle")
    assert border == "solid"  # its styles applied: adopted, never inline
    assert problems == []  # no CSP violation reported
    assert await page.context.cookies() == []  # the widget set no cookie
