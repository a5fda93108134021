"""The rating page a satisfaction letter links to, in Chromium: in the customer's language (right
to left in Arabic), from the keyboard, under the pages' policy, answered once; every customer who
answers is thanked, whatever the rating."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from types import SimpleNamespace

import pytest
from playwright.async_api import expect

from api.links import SATISFACTION, signed_token
from entitlements.satisfaction.rules import Subject
from entitlements.satisfaction.service import request_for
from entitlements.store.base import create_engine, session_factory
from tests.pages.conftest import REPLAY_KEY, Site, Watched
from tests.pages.test_console import serious

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _rating_link(site: Site, redemption_id: str) -> str:
    async def make() -> str:
        engine = create_engine(site.url)
        async with session_factory(engine)() as session, session.begin():
            request = await request_for(
                session, Subject.REDEMPTION, redemption_id, now=dt.datetime.now(dt.UTC), days=14
            )
        await engine.dispose()
        assert request is not None
        return signed_token(
            SimpleNamespace(replay_key=REPLAY_KEY), SATISFACTION, request.id, request.expires_at
        )

    return f"{site.base}/rate/{asyncio.run(make())}"


async def test_an_arabic_customer_rates_a_session_from_the_keyboard_once(
    site: Site, watched: Watched
) -> None:
    serial = "RT" + secrets.token_hex(4).upper()
    sold = site.sell(
        name="ليلى",
        serial=serial,
        locale="ar",
        country="SA",
        currency="SAR",
        price=450000,
        plan="laptop-care-36",
        category="laptop",
    )
    redeemed = site.api(
        "POST",
        "/v1/benefits/redemptions",
        "support",
        json={
            "reference": f"r-{serial}",
            "kind": "tech_support_session",
            "contract_id": sold["contract"]["id"],
        },
    )
    link = await asyncio.to_thread(_rating_link, site, redeemed["id"])
    page = watched.page
    await page.goto(link)
    await expect(page.locator("html")).to_have_attribute("dir", "rtl")
    await expect(page.locator("html")).to_have_attribute("lang", "ar")
    assert await serious(page) == []
    await page.keyboard.press("Tab")  # the first rating, from the keyboard
    await page.keyboard.press("Space")
    await page.locator("textarea").fill("سريع ومفيد")
    await page.get_by_role("button").click()
    await expect(page.locator("#thanks")).to_be_visible()
    assert watched.errors == []
    again = await page.goto(link)
    assert again is not None and again.status == 403  # spent
