"""The pages in a real browser: Debian's Chromium (/usr/bin/chromium, from `make browser`) driven
by Playwright, against `coverline serve` on a database of its own with the demo catalog.

One server and one browser per test session (with `make test`, per pytest-xdist worker); each
test gets a fresh browser context (no cookies carried over). Playwright's async API, on an event
loop of the session's that runs only while a page test does: its sync API keeps a loop running
in the thread between tests, which every other test's `asyncio.run` would then refuse."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from api.keys import KeyKind, Scope, issue_key
from api.migrate import upgrade
from entitlements.catalog import decode_catalog
from entitlements.store.base import create_engine, session_factory
from entitlements.store.plans import PlanRepository
from tests.conftest import DEMO_CATALOG, fresh_database
from tests.live import coverline_server

CHROMIUM = os.environ.get("COVERLINE_CHROMIUM") or "/usr/bin/chromium"  # as `make browser` has it
REPLAY_KEY = "pages-" + "k" * 32  # links signed by the server can be made (and spoiled) by the tests


class Site:
    """The server under test, with the demo catalog and a key of each kind the pages need."""

    def __init__(self, base: str, keys: dict[str, str], url: str = "") -> None:
        self.base = base
        self.keys = keys
        self.url = url  # its database
        self.http = httpx.Client(base_url=base, timeout=30)

    def local(self, url: str) -> str:
        """A link the server made (for its public URL, the default), on this test server."""
        return url.replace("http://127.0.0.1:8000", self.base)

    def api(self, method: str, path: str, key: str, **kwargs: Any) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {self.keys[key]}", "idempotency-key": secrets.token_hex(12)}
        answer = self.http.request(method, path, headers=headers, **kwargs)
        assert answer.status_code < 300, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def sell(
        self,
        *,
        name: str,
        serial: str,
        locale: str = "en",
        country: str = "US",
        currency: str = "USD",
        price: int = 69900,
        plan: str = "phone-protect-24",
        category: str = "phone",
    ) -> dict[str, Any]:
        """A customer with a product (a phone) and a paid plan on it (the sandbox's card pays at once)."""
        customer = self.api(
            "POST",
            "/v1/customers",
            "checkout",
            json={
                "name": name,
                "country": country,
                "locale": locale,
                "email": f"{serial.lower().replace(' ', '')}@example.com",
                **({"time_zone": "America/New_York"} if country == "US" else {}),
            },
        )
        product_facts = {
            "category": category,
            "sku": "PH-TEST-1",
            "price": {"amount": price, "currency": currency},
            "purchase_date": dt.datetime.now(dt.UTC).date().isoformat(),
            "country": country,
        }
        product = self.api(
            "POST",
            "/v1/products",
            "checkout",
            json={
                **{k: v for k, v in product_facts.items() if k != "country"},
                "customer_id": customer["id"],
                "serial": serial,
            },
        )
        offers = self.api("POST", "/v1/offers", "checkout", json={"product": product_facts, "locale": locale})
        offer = next(o for o in offers["offers"] if o["plan"]["code"] == plan)
        sale = self.api(
            "POST",
            "/v1/checkouts",
            "checkout",
            json={
                "offer_token": offer["offer_token"],
                "customer_id": customer["id"],
                "product_id": product["id"],
                "payment_method": "pm_card_visa",
            },
        )
        assert sale["contract"]["status"] == "active", sale
        return {"customer": customer, "product": product, "contract": sale["contract"]}


def _seed(url: str) -> dict[str, str]:
    async def seed() -> dict[str, str]:
        engine = create_engine(url)
        keys = {}
        async with session_factory(engine)() as session, session.begin():
            plans, problems = decode_catalog(DEMO_CATALOG.read_bytes())
            assert not problems
            await PlanRepository(session).publish(plans)
            made = [
                ("publishable", KeyKind.PUBLISHABLE, []),
                ("checkout", KeyKind.SECRET, [Scope.CHECKOUT]),
                ("support", KeyKind.SECRET, [Scope.SUPPORT]),
                ("finance", KeyKind.SECRET, [Scope.FINANCE]),
            ]
            for name, kind, scopes in made:
                keys[name] = (await issue_key(session, kind=kind, name=name, scopes=scopes, live=False)).key
        await engine.dispose()
        return keys

    return asyncio.run(seed())


@pytest.fixture(scope="session")
def site(postgres_admin_url: str) -> Iterator[Site]:
    with fresh_database(postgres_admin_url, "coverline_pages") as url:
        upgrade(url)
        keys = _seed(url)
        var = Path(tempfile.mkdtemp(prefix=f"coverline-pages-{os.getpid()}-"))
        env = {
            "DATABASE_URL": url,
            "COVERLINE_VAR_DIR": str(var),
            "COVERLINE_PK": keys["publishable"],
            "COVERLINE_SK_CHECKOUT": keys["checkout"],
            "COVERLINE_KEY_CACHE_SECONDS": "0",
            "COVERLINE_REPLAY_KEY": REPLAY_KEY,
        }
        with coverline_server(env) as base:
            yield Site(base, keys, url)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    made = await browser.new_context(viewport={"width": 1280, "height": 800})
    yield made
    await made.close()


class Watched:
    """A page, with every Content-Security-Policy violation and script error it reported."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


@pytest_asyncio.fixture(loop_scope="session")
async def watched(context: BrowserContext) -> Watched:
    return Watched(await context.new_page())
