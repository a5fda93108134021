"""The support console, in Chromium: an agent signs in with a support key and their name, finds
a product by a serial read out with spaces and in lower case, files a claim and sees the
remaining claims drop; quotes and cancels; and nothing they see or post can be forged."""

from __future__ import annotations

import secrets

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import BrowserContext, Page, expect
from sqlalchemy import text

from entitlements.store.base import create_engine
from tests.pages.conftest import Site, Watched

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def sign_in(page: Page, site: Site, agent: str = "Dana Reyes") -> None:
    await page.goto(site.base + "/console")
    await expect(page).to_have_url(site.base + "/console/sign-in")
    await page.get_by_label("Your name").fill(agent)
    await page.get_by_label("Support key").fill(site.keys["support"])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Find a product")).to_be_visible()


async def serious(page: Page) -> list[str]:
    results = await Axe().run(page)
    return [
        f"{v['id']}: {v['help']}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def test_an_agent_finds_a_product_by_a_serial_as_read_files_a_claim_and_sees_claims_drop(
    site: Site, watched: Watched
) -> None:
    serial = "QX" + secrets.token_hex(4).upper()
    sold = site.sell(name="Maria Santos", serial=serial)
    page = watched.page
    await sign_in(page, site)
    # Read out over the phone: in lower case, in groups, with a dash.
    spoken = f"{serial[:3].lower()} {serial[3:6].lower()}-{serial[6:].lower()}"
    await page.get_by_label("Serial, IMEI, phone, email, name, order or contract").fill(spoken)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="1 product found")).to_be_visible()
    await page.get_by_role("link", name=serial).click()
    contract_id = sold["contract"]["id"]
    await expect(page.locator("#verdict")).to_have_text("Covered")
    remaining = page.locator(f"#remaining-{contract_id}")
    before = int(await remaining.inner_text())
    # Each coverage with its deductible, as the plan sold states it (USD 99 for accidental damage).
    await expect(page.locator(f"#deductible-{contract_id}-accidental_damage")).to_have_text("99.00 USD")
    await expect(page.locator(f"#deductible-{contract_id}-screen")).to_have_text("29.00 USD")
    await expect(page.locator(f"#deductible-{contract_id}-battery")).to_have_text("none")
    await page.get_by_text("File a claim").click()
    form = page.get_by_role("form", name=f"File a claim on {contract_id}")
    await form.get_by_label("Kind of incident").select_option("accidental_damage")
    await form.get_by_label("Estimated cost").fill("120.00")
    await form.get_by_label("What happened").fill("Dropped on the pavement; the screen cracked.")
    await form.get_by_role("button", name="File the claim").click()
    await expect(page.locator("#notice")).to_contain_text("Claim filed")
    assert int(await remaining.inner_text()) == before - 1
    await expect(page.get_by_role("cell", name="Dana Reyes")).to_be_visible()  # filed by the agent, by name
    assert watched.errors == []
    assert await serious(page) == []


async def test_an_agent_quotes_then_cancels_with_an_explicit_confirmation(
    site: Site, watched: Watched
) -> None:
    serial = "CN" + secrets.token_hex(4).upper()
    sold = site.sell(name="Lena Berg", serial=serial, locale="sv", country="SE", currency="SEK", price=699900)
    page = watched.page
    await sign_in(page, site)
    await page.get_by_label("Serial, IMEI, phone, email, name, order or contract").fill(
        sold["customer"]["email"]
    )
    await page.keyboard.press("Enter")
    await page.get_by_role("link", name=serial).click()
    await page.get_by_role("button", name="Quote a refund").click()
    await expect(page.locator("#quote")).to_be_visible()
    cancel = page.get_by_role("button", name="Cancel the contract and refund")
    await cancel.click()  # not confirmed: the browser keeps the form (the box is required)
    await expect(page.locator("#quote")).to_be_visible()
    await page.get_by_label("The customer asked to cancel and accepts this refund").check()
    await cancel.click()
    await expect(page.locator("#notice")).to_have_text("Contract cancelled.")
    await expect(page.locator("#verdict")).to_contain_text("Not covered")
    contract = site.api("GET", f"/v1/contracts/{sold['contract']['id']}", "support")
    assert contract["status"] == "cancelled"
    history = site.api("GET", f"/v1/contracts/{sold['contract']['id']}/history", "support")["data"]
    assert any(h["action"] == "agent_action" and h["changes"]["agent"] == "Dana Reyes" for h in history)


async def test_the_summary_reads_right_to_left_in_arabic(site: Site, watched: Watched) -> None:
    serial = "AR" + secrets.token_hex(4).upper()
    sold = site.sell(
        name="Omar Haddad", serial=serial, locale="ar", country="SA", currency="SAR", price=179900
    )
    page = watched.page
    await sign_in(page, site)
    await page.goto(f"{site.base}/console/products/{sold['product']['id']}?locale=ar")
    summary = page.locator("#summary")
    await expect(summary).to_have_attribute("dir", "rtl")
    await expect(summary).to_have_attribute("lang", "ar")
    assert "مشمول" in await summary.inner_text() or "خطة" in await summary.inner_text()


async def test_a_customer_named_as_a_script_is_shown_as_text(site: Site, watched: Watched) -> None:
    name = "<script>alert(1)</script>"
    sold = site.sell(name=name, serial="XS" + secrets.token_hex(4).upper())
    page = watched.page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    await sign_in(page, site)
    await page.goto(f"{site.base}/console/products/{sold['product']['id']}")
    await expect(page.locator("#customer-name")).to_have_text(name)
    assert dialogs == []


async def tab_to(page: Page, selector: str, presses: int = 80) -> None:
    """Presses Tab until the focused element matches the CSS selector, as a keyboard user would."""
    for _ in range(presses):
        await page.keyboard.press("Tab")
        if await page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
async def test_the_console_works_from_the_keyboard_alone(
    site: Site, context: BrowserContext, width: int, height: int
) -> None:
    serial = "KB" + secrets.token_hex(4).upper()
    sold = site.sell(name="Keyboard Only", serial=serial)
    contract_id = sold["contract"]["id"]
    page = await context.new_page()
    await page.set_viewport_size({"width": width, "height": height})
    await page.goto(site.base + "/console/sign-in")
    assert await serious(page) == []
    await tab_to(page, "input[name=agent]")
    await page.keyboard.type("Kim Keyboard")
    await page.keyboard.press("Tab")
    await page.keyboard.type(site.keys["support"])
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Find a product")).to_be_visible()
    await page.keyboard.type(serial)  # the search box has the focus
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="1 product found")).to_be_visible()
    await tab_to(page, f"a[href='/console/products/{sold['product']['id']}']")
    await page.keyboard.press("Enter")
    await expect(page.locator("#verdict")).to_have_text("Covered")
    remaining = page.locator(f"#remaining-{contract_id}")
    before = int(await remaining.inner_text())
    # File a claim with the keyboard alone: open the form, pick the incident by typing its name.
    await tab_to(page, f"details:has(form[aria-label='File a claim on {contract_id}']) > summary")
    await page.keyboard.press("Enter")
    await tab_to(page, "select[name=incident_kind]")
    await page.keyboard.type("accidental")
    await tab_to(page, "input[name=amount]")
    await page.keyboard.press("Control+A")
    await page.keyboard.type("80.00")
    await page.keyboard.press("Tab")
    await page.keyboard.type("Fell off the desk.")
    await tab_to(page, "button[type=submit]")
    await page.keyboard.press("Enter")
    await expect(page.locator("#notice")).to_contain_text("Claim filed")
    assert int(await remaining.inner_text()) == before - 1
    width_used = await page.evaluate("document.documentElement.scrollWidth")
    assert width_used <= width  # nothing wider than the screen
    assert await serious(page) == []


async def test_a_form_posted_without_its_csrf_token_is_refused(site: Site, context: BrowserContext) -> None:
    page = await context.new_page()
    await page.goto(site.base + "/console/sign-in")  # the browser has its CSRF cookie now
    form = {"agent": "Mallory", "key": site.keys["support"]}
    forged = await context.request.post(site.base + "/console/sign-in", form=form, max_redirects=0)
    assert forged.status == 403
    wrong = await context.request.post(
        site.base + "/console/sign-in", form={**form, "csrf": "0" * 64}, max_redirects=0
    )
    assert wrong.status == 403
    foreign = await context.request.post(
        site.base + "/console/sign-in", form={**form, "csrf": "é" * 64}, max_redirects=0
    )
    assert foreign.status == 403  # not ASCII: refused like any wrong token, never a 500
    assert not any(c["name"] == "coverline_console" for c in await context.cookies())


async def test_a_signed_in_agents_form_posted_without_its_csrf_token_is_refused_and_files_nothing(
    site: Site, context: BrowserContext
) -> None:
    sold = site.sell(name="Forged Form", serial="CF" + secrets.token_hex(4).upper())
    contract_id = sold["contract"]["id"]
    page = await context.new_page()
    await sign_in(page, site)
    claim = {"incident_kind": "screen", "incident_date": "2026-01-01", "amount": "10.00", "description": ""}
    for action, form in [
        ("claims", claim),
        ("refund-quote", {}),
        ("cancel", {"refund_amount": "0", "confirm": "yes"}),
        ("transfer", {"customer_id": sold["customer"]["id"]}),
    ]:
        forged = await context.request.post(
            f"{site.base}/console/contracts/{contract_id}/{action}", form=form, max_redirects=0
        )
        assert forged.status == 403, action
    assert site.api("GET", f"/v1/claims?contract_id={contract_id}", "support")["data"] == []
    assert site.api("GET", f"/v1/contracts/{contract_id}", "support")["status"] == "active"


@pytest.mark.parametrize("key", ["finance", "publishable"])
async def test_only_a_support_or_admin_key_signs_in(site: Site, context: BrowserContext, key: str) -> None:
    page = await context.new_page()
    await page.goto(site.base + "/console/sign-in")
    await page.get_by_label("Your name").fill("Someone")
    await page.get_by_label("Support key").fill(site.keys[key])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#sign-in-error")).to_be_visible()
    await page.goto(site.base + "/console")
    await expect(page).to_have_url(site.base + "/console/sign-in")


async def test_the_session_cookie_holds_no_key_and_scripts_cannot_read_it(
    site: Site, context: BrowserContext
) -> None:
    page = await context.new_page()
    await sign_in(page, site)
    [session] = [c for c in await context.cookies() if c["name"] == "coverline_console"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert site.keys["support"] not in session["value"]
    assert "coverline_console" not in await page.evaluate("document.cookie")
    await page.get_by_role("button", name="Sign out").click()
    await page.goto(site.base + "/console")
    await expect(page).to_have_url(site.base + "/console/sign-in")


async def test_signing_in_and_out_is_audited_with_the_agents_name(
    site: Site, context: BrowserContext
) -> None:
    agent = "Audit " + secrets.token_hex(3)
    page = await context.new_page()
    await sign_in(page, site, agent)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(site.base + "/console/sign-in")
    engine = create_engine(site.url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT entity, action, changes::jsonb->>'did' FROM audit_events"
                    " WHERE changes::jsonb->>'agent' = :agent ORDER BY id"
                ),
                {"agent": agent},
            )
            audited = [tuple(row) for row in rows]
    finally:
        await engine.dispose()
    assert audited == [("api_key", "agent_action", "sign_in"), ("api_key", "agent_action", "sign_out")]


async def test_an_agent_transfers_a_contract_to_another_customer(site: Site, watched: Watched) -> None:
    serial = "TR" + secrets.token_hex(4).upper()
    sold = site.sell(name="First Owner", serial=serial)
    buyer = site.sell(name="Second Owner", serial="TB" + secrets.token_hex(4).upper())["customer"]
    page = watched.page
    await sign_in(page, site)
    await page.goto(f"{site.base}/console/products/{sold['product']['id']}")
    await page.get_by_text("Transfer to another customer").click()
    await page.get_by_label("New owner's customer id").fill(buyer["id"])
    await page.get_by_role("button", name="Transfer", exact=True).click()
    await expect(page.locator("#notice")).to_have_text("Contract transferred.")
    await expect(page.locator("#customer-name")).to_have_text("Second Owner")
    contract = site.api("GET", f"/v1/contracts/{sold['contract']['id']}", "support")
    assert contract["customer_id"] == buyer["id"]


async def test_the_card_shows_the_support_line_the_services_left_and_when_a_case_opened_now_is_due(
    site: Site, watched: Watched
) -> None:
    serial = "LT" + secrets.token_hex(4).upper()
    sold = site.sell(name="Sam Lee", serial=serial, plan="laptop-care-36", category="laptop", price=129900)
    page = watched.page
    await sign_in(page, site)
    await page.goto(f"{site.base}/console/products/{sold['contract']['product_id']}")
    contract_id = sold["contract"]["id"]
    await expect(page.locator(f"#support-{contract_id}")).to_contain_text("priority · phone, chat")
    await expect(page.locator(f"#benefit-{contract_id}-tech_support_session")).to_have_text("2")
    await expect(page.get_by_role("heading", name="Support targets for a case opened now")).to_be_visible()
    assert watched.errors == []
    assert await serious(page) == []


async def test_a_name_with_direction_marks_is_refused_at_sign_in_and_what_was_typed_stays(
    site: Site, context: BrowserContext
) -> None:
    """As the API's Coverline-Agent header is: `\u202eksed@anah` would show as `hana@desk` in the
    history. The error is tied to the field, and the name is kept for correcting."""
    page = await context.new_page()
    await page.goto(site.base + "/console/sign-in")
    await page.get_by_label("Your name").fill("\u202eksed@anah")
    await page.get_by_label("Support key").fill(site.keys["support"])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#sign-in-error")).to_contain_text("direction marks")
    name = page.get_by_label("Your name")
    await expect(name).to_have_attribute("aria-invalid", "true")
    await expect(name).to_have_value("\u202eksed@anah")
    await expect(page).to_have_url(site.base + "/console/sign-in")
