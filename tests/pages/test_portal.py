"""The customer portal, in Chromium: a customer opens the link from their letter, reads their
proof of coverage with the terms of the plan they bought, files a claim, and cancels with the
refund shown first; the link is exchanged at once for a session and expires after its days."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from types import SimpleNamespace
from typing import cast

import pytest
from playwright.async_api import BrowserContext, expect

from api.links import PORTAL, signed_token
from api.pages.common import words
from api.settings import Settings
from tests.pages.conftest import REPLAY_KEY, Site, Watched
from tests.pages.test_console import serious

pytestmark = pytest.mark.asyncio(loop_scope="session")


def portal_url(site: Site, customer_id: str, key: str = "support") -> str:
    link = site.api("POST", f"/v1/customers/{customer_id}/portal-links", key)
    expires = dt.datetime.fromisoformat(link["expires_at"])
    assert dt.timedelta(days=6, hours=23) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(days=7)
    return site.local(str(link["url"]))


async def test_a_customer_opens_the_link_reads_the_proof_and_cancels_with_a_refund(
    site: Site, watched: Watched
) -> None:
    sold = site.sell(
        name="Maria Santos",
        serial="PT" + secrets.token_hex(4).upper(),
        locale="fil",
        country="PH",
        currency="PHP",
        price=2499000,
    )
    page = watched.page
    url = portal_url(site, sold["customer"]["id"], key="checkout")
    referers: list[str | None] = []
    page.on("request", lambda r: referers.append(r.headers.get("referer")))
    await page.goto(url)
    await expect(page).to_have_url(site.base + "/portal")  # the token is gone from the address bar
    await expect(page.locator("html")).to_have_attribute("lang", "fil")
    contract_id = sold["contract"]["id"]
    proof = page.locator("article", has=page.locator(f"#proof-{contract_id}"))
    await expect(proof).to_contain_text(contract_id)
    await expect(proof).to_contain_text(sold["product"]["serial"])
    terms = proof.locator("details li")
    assert await terms.count() >= 5  # the rules of the plan version bought, in Filipino
    assert "saklaw" in " ".join(await terms.all_inner_texts()).lower()
    assert not any(referers[1:]), referers  # nothing sent a Referer from the portal
    assert await serious(page) == []
    await proof.locator("form[action$='/quote'] button").click()
    quote = page.locator("#quote")
    await expect(quote).to_be_visible()
    quoted = int(await quote.locator("input[name=refund_amount]").get_attribute("value") or "0")
    assert quoted > 0  # within the free look: the whole price back
    await quote.locator("button").click()
    await expect(page.locator("#cancelled")).to_be_visible()
    # The proof still shows what was covered, and says, in Filipino, that the plan was cancelled.
    ended = page.locator(f"#ended-{contract_id}")
    await expect(ended).to_be_visible()
    check = site.api("GET", f"/v1/entitlements?contract_id={contract_id}&locale=fil", "support")
    assert (await ended.inner_text()).strip() in check["summary"]  # the words a check says
    contract = site.api("GET", f"/v1/contracts/{contract_id}", "support")
    assert contract["status"] == "cancelled"
    ledger = site.api("GET", f"/v1/finance/ledger?contract_id={contract_id}", "finance")["data"]
    refunds = [e for e in ledger if e["kind"] == "refund"]
    assert [e["amount"] for e in refunds] == [{"amount": -quoted, "currency": "PHP"}]
    assert refunds[0]["stripe_refund"]  # paid back through Stripe, the quote to the centavo
    assert watched.errors == []


async def test_a_customer_files_a_claim_and_sees_its_status(site: Site, watched: Watched) -> None:
    sold = site.sell(
        name="Anh Nguyen",
        serial="CL" + secrets.token_hex(4).upper(),
        locale="vi",
        country="VN",
        currency="VND",
        price=9990000,
    )
    page = watched.page
    await page.goto(portal_url(site, sold["customer"]["id"]))
    proof = page.locator("article").first
    await proof.locator("summary").nth(1).click()  # the claim form
    form = proof.locator("form[action='/portal/claims']")
    await form.locator("select[name=incident_kind]").select_option("accidental_damage")
    await form.locator("input[name=amount]").fill("1500000")
    await form.locator("textarea[name=description]").fill("Rơi xuống nước")
    await form.locator("button[type=submit]").click()
    await expect(page).to_have_url(site.base + "/portal?notice=claim")
    claims = site.api("GET", f"/v1/claims?contract_id={sold['contract']['id']}", "support")["data"]
    assert len(claims) == 1 and claims[0]["filed_by"] == "customer"
    await expect(page.locator("article").first).to_contain_text(claims[0]["reference"])


async def test_an_expired_or_forged_link_is_refused(site: Site, context: BrowserContext) -> None:
    sold = site.sell(name="Late Reader", serial="EX" + secrets.token_hex(4).upper())
    customer_id = sold["customer"]["id"]

    page = await context.new_page()
    signer = cast(Settings, SimpleNamespace(replay_key=REPLAY_KEY))
    good = signed_token(signer, PORTAL, customer_id, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
    opened = await page.goto(f"{site.base}/portal/{good}")
    assert opened is not None and opened.status == 200
    await context.clear_cookies()
    expired = signed_token(signer, PORTAL, customer_id, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    answer = await page.goto(f"{site.base}/portal/{expired}")
    assert answer is not None and answer.status == 403
    forged = portal_url(site, customer_id).rsplit(".", 1)[0] + ".AAAAAAAAAAAAAAAAAAAAAAAA"
    answer = await page.goto(forged)
    assert answer is not None and answer.status == 403
    assert not any(c["name"] == "coverline_portal" for c in await context.cookies())
    assert (await context.request.get(site.base + "/portal")).status == 403  # no session, no page
    # With no session to say whose language, the refusal speaks the browser's.
    arabic = await context.request.get(site.base + "/portal", headers={"accept-language": "ar,en;q=0.5"})
    assert arabic.status == 403
    body = await arabic.text()
    assert 'lang="ar"' in body and 'dir="rtl"' in body
    assert words("ar")["portal_link_refused"] in body and words("ar")["error_title_refused"] in body
    assert "Forbidden" not in body


async def test_a_hindi_customer_is_told_the_card_page_is_in_english(site: Site, watched: Watched) -> None:
    sold = site.sell(
        name="Priya Sharma",
        serial="HI" + secrets.token_hex(4).upper(),
        locale="hi",
        country="IN",
        currency="INR",
        price=2999900,
    )
    page = watched.page
    await page.goto(portal_url(site, sold["customer"]["id"]))
    card = page.locator("section[aria-labelledby=card-h]")
    await expect(card.locator(".notice")).to_contain_text("Stripe")
    await card.locator("button").click()
    await expect(page).to_have_url(re.compile(r"/sandbox/billing/"))
    await page.locator("input[value=pm_card_chargeDeclined]").check()
    await page.locator("form button[type=submit]").click()
    await expect(page).to_have_url(site.base + "/portal")


SENT_TWICE = """form => Promise.all([1, 2].map(() => fetch(form.action, {
    method: "POST", body: new URLSearchParams(new FormData(form)), credentials: "same-origin"
}).then(r => [r.status, r.url])))"""


async def test_a_form_sent_twice_files_one_claim_and_cancels_once_without_an_error(
    site: Site, watched: Watched
) -> None:
    """A double click, or a retry on a slow line: the claim form carries its own reference, and
    the second cancel waits for the first and shows the same confirmation."""
    sold = site.sell(
        name="Lina Berg",
        serial="TW" + secrets.token_hex(4).upper(),
        locale="sv",
        country="SE",
        currency="SEK",
        price=899000,
    )
    page = watched.page
    await page.goto(portal_url(site, sold["customer"]["id"]))
    proof = page.locator("article").first
    await proof.locator("summary").nth(1).click()
    form = proof.locator("form[action='/portal/claims']")
    await form.locator("select[name=incident_kind]").select_option("accidental_damage")
    await form.locator("input[name=amount]").fill("100")
    await form.locator("textarea[name=description]").fill("Tappade den")
    answers = await form.evaluate(SENT_TWICE)
    assert [status for status, _ in answers] == [200, 200]
    claims = site.api("GET", f"/v1/claims?contract_id={sold['contract']['id']}", "support")["data"]
    assert len(claims) == 1

    await page.goto(site.base + "/portal")
    await page.locator("article").first.locator("form[action$='/quote'] button").click()
    answers = await page.locator("#quote form").evaluate(SENT_TWICE)
    assert [(status, "notice=cancelled" in url) for status, url in answers] == [(200, True), (200, True)]
    ledger = site.api("GET", f"/v1/finance/ledger?contract_id={sold['contract']['id']}", "finance")["data"]
    assert len([e for e in ledger if e["kind"] == "refund"]) == 1


async def test_a_link_followed_from_another_site_opens_the_portal(
    site: Site, context: BrowserContext
) -> None:
    """As from a webmail page: the navigation begins on another site, and the session the link
    opens must still reach /portal."""
    sold = site.sell(
        name="Mail Reader",
        serial="XS" + secrets.token_hex(4).upper(),
        locale="ar",
        country="SA",
        currency="SAR",
        price=349900,
    )
    link = portal_url(site, sold["customer"]["id"])
    page = await context.new_page()
    await context.route(
        "https://mail.example/**",
        lambda route: route.fulfill(content_type="text/html", body=f'<a id="open" href="{link}">Open</a>'),
    )
    await page.goto("https://mail.example/inbox")
    await page.click("#open")
    await expect(page).to_have_url(site.base + "/portal")
    await expect(page.locator("article").first).to_contain_text(sold["contract"]["id"])


async def test_an_error_on_a_portal_page_is_in_the_customers_language_not_the_browsers(
    site: Site, watched: Watched
) -> None:
    sold = site.sell(
        name="Nils Ek",
        serial="LG" + secrets.token_hex(4).upper(),
        locale="sv",
        country="SE",
        currency="SEK",
        price=899000,
    )
    page = watched.page  # a browser asking for English
    await page.goto(portal_url(site, sold["customer"]["id"]))
    form = page.locator("form[action='/portal/claims']").first
    answer = await form.evaluate(
        """form => { const data = new FormData(form); data.set("incident_kind", "accidental_damage");
        data.set("incident_date", "2999-01-01"); data.set("amount", "100"); data.set("description", "x");
        return fetch(form.action, {method: "POST", body: new URLSearchParams(data), headers: {"accept-language": "en-US"}})
            .then(r => r.text().then(t => [r.status, t])) }"""
    )
    status, html = answer
    assert status == 422 and '<html lang="sv"' in html


async def test_a_page_that_sends_the_browser_on_says_see_other(site: Site) -> None:
    """303, as every page route declares: after a form, the browser asks for the next page with
    GET (a 302 leaves that to the browser)."""
    sold = site.sell(name="Redirected", serial="RD" + secrets.token_hex(4).upper())
    answer = site.http.get(portal_url(site, sold["customer"]["id"]), follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/portal")
