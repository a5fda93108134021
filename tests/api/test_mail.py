"""Letters to customers, received by a real SMTP server (aiosmtpd) in this process, in all six
languages; marketing only with consent, and one click to withdraw it."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import socket
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller

from api.app import CoverlineApp, create_app
from api.links import PORTAL, subject_of
from api.mail import send_for_event
from entitlements import jobs
from tests.api.shop import Shop
from tests.api.test_events import FAST, drain
from tests.api.test_outreach import events, run_sweep
from tests.conftest import make_settings

PUBLIC = "https://coverline.example"
# The customer each language is sold to, and a word its letters must hold.
CUSTOMERS = {
    "en": ("US", "Hello"),
    "fil": ("PH", "Magandang araw"),
    "hi": ("IN", "नमस्ते"),
    "sv": ("SE", "Hej"),
    "ar": ("SA", "مرحبًا"),
    "vi": ("VN", "Xin chào"),
}


class Inbox:
    def __init__(self) -> None:
        self.letters: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        letter = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(letter, EmailMessage)
        self.letters.append(letter)
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, str]]:
    handler = Inbox()
    with socket.socket() as probe:  # a free port (aiosmtpd checks the one it is given by connecting)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Controller(handler, hostname="127.0.0.1", port=port)
    server.start()
    try:
        yield handler, f"smtp://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
async def app(database_url: str, inbox: tuple[Inbox, str]) -> AsyncIterator[CoverlineApp]:
    yield create_app(make_settings(database_url, smtp_url=inbox[1], public_url=PUBLIC, **FAST))


def text_of(letter: EmailMessage) -> str:
    part = letter.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(letter: EmailMessage) -> str:
    part = letter.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


async def test_the_welcome_letter_goes_out_in_each_customers_language(
    shop: Shop, app: CoverlineApp, inbox: tuple[Inbox, str]
) -> None:
    received, _ = inbox
    customers = {}
    for locale, (country, _) in CUSTOMERS.items():
        customer = await shop.customer(country=country, locale=locale, email=f"{locale}@example.com")
        customers[locale] = customer["id"]
        product = await shop.product(customer["id"])
        contract = await shop.open_contract(customer, product, country=country)
        await shop.lifecycle(contract["id"], "payment", f"pay-{contract['id']}")
    await drain(app)
    by_address = {str(letter["To"]): letter for letter in received.letters}
    assert set(by_address) == {f"{locale}@example.com" for locale in CUSTOMERS}
    for locale, (_, hello) in CUSTOMERS.items():
        letter = by_address[f"{locale}@example.com"]
        assert letter["Content-Language"] == locale
        assert letter["Message-ID"].startswith("<evt_") and letter["Message-ID"].endswith(
            "@coverline.invalid>"
        )
        assert "List-Unsubscribe" not in letter  # a service letter
        text = text_of(letter)
        assert text.startswith(hello), (locale, text[:80])
        assert "ctr_" in text and "\n- " in text  # the contract's number and its rule clauses
        # It ends with the customer's way into their portal, signed for them alone.
        [token] = re.findall(rf"{PUBLIC}/portal/(\S+)", text)
        assert subject_of(app.state.settings, PORTAL, token, dt.datetime.now(dt.UTC)) == customers[locale]
        page = html_of(letter)
        assert f'lang="{locale}"' in page and ('dir="rtl"' in page) is (locale == "ar")


async def test_a_letter_sent_again_is_the_same_message(
    shop: Shop, app: CoverlineApp, inbox: tuple[Inbox, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    received, _ = inbox
    await shop.sell()
    [activated] = await events(shop, "contract.activated")
    await send_for_event(app.state.db, app.state.settings, activated["id"])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=7)
    monkeypatch.setattr("api.mail.utcnow", lambda: later)  # the job retried after a lost acknowledgement
    await send_for_event(app.state.db, app.state.settings, activated["id"])
    first, second = received.letters
    assert first["Message-ID"] == second["Message-ID"]
    assert text_of(first) == text_of(second)


async def test_a_lead_is_mailed_only_with_consent_and_one_click_withdraws_it(
    shop: Shop, app: CoverlineApp, inbox: tuple[Inbox, str]
) -> None:
    import datetime as dt

    received, _ = inbox
    willing = await shop.customer(country="SE", locale="sv", email="ja@example.se", marketing_consent=True)
    unwilling = await shop.customer(country="SE", locale="sv", email="nej@example.se")
    for customer in (willing, unwilling):
        await shop.product(customer["id"])
    assert (await run_sweep(app, dt.datetime.now(dt.UTC) + dt.timedelta(hours=25))).offer_lead == 2
    await drain(app)
    # One letter, to the customer who agreed. Its job may run twice on a loaded machine (a lease
    # lost while the server had accepted it): it then sends the same message again.
    assert {str(sent["To"]) for sent in received.letters} == {"ja@example.se"}
    by_id = {sent["Message-ID"]: sent for sent in received.letters}
    assert len(by_id) == 1, [(sent["Subject"], sent["Message-ID"]) for sent in received.letters]
    [letter] = by_id.values()
    assert letter["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = str(letter["List-Unsubscribe"]).strip("<>")
    assert link.startswith(f"{PUBLIC}/v1/unsubscribe/{willing['id']}.")
    assert link in text_of(letter) and "https://shop.example/protect?lead=lead_" in text_of(letter)
    path = link.removeprefix(PUBLIC)
    page = await shop.client.get(path)
    assert page.status_code == 200 and 'lang="sv"' in page.text and "<form" in page.text
    clicked = await shop.client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert clicked.status_code == 200, clicked.text
    customer = await shop.call("GET", f"/v1/customers/{willing['id']}", "support")
    assert customer["marketing_consent"] is False
    forged = await shop.client.post(f"/v1/unsubscribe/{unwilling['id']}.AAAAAAAAAAAAAAAAAAAAAAAA")
    assert forged.status_code == 404 and forged.headers["content-type"].startswith("application/problem+json")


async def test_with_no_smtp_server_letters_are_written_as_files(
    shop: Shop, database_url: str, tmp_path: Path
) -> None:
    offline = create_app(make_settings(database_url, var_dir=tmp_path))
    await shop.sell()
    [activated] = await events(shop, "contract.activated")
    await offline.state.db.start()
    try:
        await send_for_event(offline.state.db, offline.state.settings, activated["id"])
    finally:
        await offline.state.db.dispose()
    [written] = (tmp_path / "outbox").glob("*.eml")
    assert written.name == f"{activated['id']}.eml"
    assert written.stat().st_mode & 0o777 == 0o600  # a letter holds personal data: its owner's alone
    letter = email.message_from_bytes(written.read_bytes(), policy=email.policy.default)
    assert letter["Message-ID"] == f"<{activated['id']}@coverline.invalid>"


def test_every_event_that_writes_a_letter_has_one() -> None:
    from api.mail import LETTERS

    assert set(LETTERS) == jobs.EMAIL_EVENTS


async def test_a_request_for_information_mails_the_customer_a_link_that_takes_the_photo(
    shop: Shop, app: CoverlineApp, inbox: tuple[Inbox, str]
) -> None:
    received, _ = inbox
    asked: dict[str, str] = {}
    for locale, country, currency, zone in (
        ("sv", "SE", "USD", "Europe/Stockholm"),
        ("ar", "SA", "SAR", "Asia/Riyadh"),
    ):
        customer = await shop.customer(country=country, locale=locale, email=f"claim-{locale}@example.com")
        product = await shop.product(customer["id"], currency=currency)
        contract = await shop.open_contract(customer, product, "test-reviewed", country=country)
        await shop.lifecycle(contract["id"], "payment", f"pay-{contract['id']}")
        claim = await shop.claim(
            contract_id=contract["id"],
            incident_kind="theft_loss",
            amount={"amount": 30000, "currency": currency},
            # Today where the customer lives: late in a UTC day it is already tomorrow in Riyadh,
            # and the machine's date would be the day before cover began.
            incident_date=dt.datetime.now(ZoneInfo(zone)).date().isoformat(),
        )
        response = await shop.client.post(
            f"/v1/claims/{claim['id']}/review",
            json={"action": "request_info", "reason_code": "police_report"},
            headers=shop.keys.auth("support") | {"Coverline-Agent": "rita"},
        )
        assert response.status_code == 200, response.text
        asked[locale] = claim["id"]
    await drain(app)
    letters = {str(m["To"]): m for m in received.letters if "/v1/evidence-uploads/" in text_of(m)}
    assert set(letters) == {"claim-sv@example.com", "claim-ar@example.com"}
    sv, ar = text_of(letters["claim-sv@example.com"]), text_of(letters["claim-ar@example.com"])
    assert "polisanmälan" in sv and "محضر الشرطة" in ar  # what is asked for, in their language
    assert 'dir="rtl"' in html_of(letters["claim-ar@example.com"])
    link = next(word for word in sv.split() if word.startswith(f"{PUBLIC}/v1/evidence-uploads/"))
    sent = await shop.client.post(
        link.removeprefix(PUBLIC),
        files={"file": ("report.pdf", b"%PDF-1.7\n%%EOF\n", "application/pdf")},
        data={"kind": "police_report"},
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["claim_id"] == asked["sv"]
