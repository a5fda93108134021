"""`make screenshots`: the README's pictures of the pages (docs/screenshots/*.png), made in
Debian's Chromium against a server with the demo catalog on a database of its own. Not a test:
tests never write tracked files."""

from __future__ import annotations

import os
import tempfile

from playwright.sync_api import Page, expect, sync_playwright

from api.embedded import embedded_url
from api.migrate import upgrade
from tests.conftest import PG_HOST, PG_PORT, ROOT, _local_server_answers, fresh_database
from tests.live import coverline_server
from tests.pages.conftest import CHROMIUM, REPLAY_KEY, Site, _seed

OUT = ROOT / "docs" / "screenshots"


def shoot(page: Page, name: str) -> None:
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=False)
    print(f"docs/screenshots/{name}.png")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    admin = (
        f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"
        if _local_server_answers()
        else embedded_url(ROOT / "var" / "test-postgres")
    )
    with fresh_database(admin, "coverline_shots") as url:
        upgrade(url)
        keys = _seed(url)
        env = {
            "DATABASE_URL": url,
            "COVERLINE_VAR_DIR": tempfile.mkdtemp(prefix="coverline-shots-"),
            "COVERLINE_PK": keys["publishable"],
            "COVERLINE_SK_CHECKOUT": keys["checkout"],
            "COVERLINE_REPLAY_KEY": REPLAY_KEY,
        }
        with coverline_server(env) as base, sync_playwright() as playwright:
            site = Site(base, keys)
            sold = site.sell(
                name="Maria Santos",
                serial="R58N 91KQ2X",
                locale="fil",
                country="PH",
                currency="PHP",
                price=2499000,
            )
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(base + "/console/sign-in")
            page.get_by_label("Your name").fill("Dana Reyes")
            page.get_by_label("Support key").fill(keys["support"])
            page.get_by_role("button", name="Sign in").click()
            page.get_by_label("Serial, IMEI, phone, email, name, order or contract").fill("r58n 91kq-2x")
            page.keyboard.press("Enter")
            shoot(page, "console-search")
            page.get_by_role("link", name="R58N91KQ2X").click()
            expect(page.locator("#verdict")).to_be_visible()
            shoot(page, "console-product")
            for lang in ("en", "ar"):
                page.goto(f"{base}/demo/checkout?lang={lang}")
                expect(page.locator("coverline-offers").get_by_role("radio").first).to_be_visible()
                page.locator("coverline-offers").get_by_role("radio").first.check()
                shoot(page, f"widget-{lang}")
            link = site.api("POST", f"/v1/customers/{sold['customer']['id']}/portal-links", "support")["url"]
            portal = browser.new_page(viewport={"width": 1280, "height": 800})
            portal.goto(site.local(link))
            shoot(portal, "portal")
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.goto(
                site.local(
                    site.api("POST", f"/v1/customers/{sold['customer']['id']}/portal-links", "support")["url"]
                )
            )
            shoot(phone, "portal-phone")
            page.goto(base + "/docs")
            expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=15000)
            shoot(page, "docs")
            browser.close()


if __name__ == "__main__":
    os.environ.setdefault("COVERLINE_LOG_LEVEL", "WARNING")
    main()
