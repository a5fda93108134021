"""A person's data exported whole and erased everywhere it is kept: the customer row, what they
wrote on claims, evidence, Stripe's event bodies, stored replays, letters on disk and page
sessions; the ids stay, so finance reconciles and the check still answers by serial."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, select, text

from api.app import CoverlineApp
from api.tables import IdempotentRequestRow, PageSessionRow
from billing.privacy import redacted
from billing.tables import LedgerEntryRow, StripeEventRow
from entitlements import jobs
from entitlements.privacy import TOMBSTONE
from entitlements.store.tables import EventRow
from tests.api.shop import Shop
from tests.conftest import Keys


async def _sold(shop: Shop, client: httpx.AsyncClient, keys: Keys) -> tuple[dict, str]:
    """A customer who bought a plan through the sandbox (so Stripe sent events naming them),
    with a claim they described; the Idempotency-Key their creation was sent with."""
    key = f"create-{secrets.token_hex(6)}"
    email = f"erin{secrets.token_hex(3)}@example.com"
    answer = await client.post(
        "/v1/customers",
        headers={**keys.auth("checkout"), "Idempotency-Key": key},
        json={
            "name": "Erin Example",
            "country": "US",
            "time_zone": "America/Chicago",
            "email": email,
            "phone": "+12025550123",
        },
    )
    assert answer.status_code == 201, answer.text
    customer = answer.json()
    product = await shop.product(customer["id"])
    token = await shop.offer_token(product, "test-screen-guard")
    sale = await shop.call(
        "POST",
        "/v1/checkouts",
        "checkout",
        json={
            "offer_token": token,
            "customer_id": customer["id"],
            "product_id": product["id"],
            "payment_method": "pm_card_visa",
        },
    )
    assert sale["contract"]["status"] == "active"
    await shop.claim(
        contract_id=sale["contract"]["id"],
        reference=f"c-{secrets.token_hex(4)}",
        incident_kind="screen",
        incident_date=dt.datetime.now(ZoneInfo("America/Chicago")).date().isoformat(),  # their today
        amount={"amount": 10000, "currency": "USD"},
        description="Erin dropped it at her flat on Storgatan 1",
    )
    return {**customer, "serial": product["serial"], "contract_id": sale["contract"]["id"]}, key


async def test_the_export_holds_everything_about_the_person(
    shop: Shop, client: httpx.AsyncClient, keys: Keys
) -> None:
    customer, _ = await _sold(shop, client, keys)
    export = (await client.get(f"/v1/customers/{customer['id']}/export", headers=keys.auth("support"))).json()
    assert export["customer"]["email"] == customer["email"]
    assert [p["serial"] for p in export["products"]] == [customer["serial"]]
    assert [c["id"] for c in export["contracts"]] == [customer["contract_id"]]
    assert export["coverage_periods"] and export["claims"][0]["description"].startswith("Erin")
    assert {h["entity"] for h in export["history"]} >= {"customer", "product", "contract", "claim"}
    refused = await client.get(f"/v1/customers/{customer['id']}/export", headers=keys.auth("finance"))
    assert refused.status_code == 403


async def test_erasure_reaches_every_copy_and_keeps_the_ids(
    shop: Shop, client: httpx.AsyncClient, keys: Keys, app: CoverlineApp
) -> None:
    customer, key = await _sold(shop, client, keys)
    settings = app.state.settings
    outbox = settings.var_dir / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    (outbox / f"evt_{secrets.token_hex(4)}.eml").write_text(
        f"To: {customer['email']}\nSubject: hi\n\nHej Erin\n"
    )
    async with app.state.db.sessions() as session, session.begin():
        session.add(
            PageSessionRow(
                id=secrets.token_hex(32),
                kind="portal",
                customer_id=customer["id"],
                locale="sv",
                created_at=dt.datetime.now(dt.UTC),
                expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
            )
        )
    ledger_before = await _ledger(app, customer["contract_id"])

    assert (
        await client.post(f"/v1/customers/{customer['id']}/erase", headers=keys.auth("support"))
    ).status_code == 403
    erased = await shop.call("POST", f"/v1/customers/{customer['id']}/erase", "admin")
    assert not erased["already_erased"]
    assert (
        erased["stripe_events_redacted"] >= 1
        and erased["replays_deleted"] >= 1
        and erased["letters_deleted"] == 1
    )

    row = await shop.call("GET", f"/v1/customers/{customer['id']}", "support")
    assert (row["name"], row["email"], row["phone"]) == (TOMBSTONE, None, None)
    export = await shop.call("GET", f"/v1/customers/{customer['id']}/export", "support")
    assert export["claims"][0]["description"] is None
    assert any(h["action"] == "erased" for h in export["history"])
    check = await shop.check(serial=customer["serial"])
    assert check["covered"] is True  # the product keeps its serial: the check still answers
    assert customer["email"][1:] not in str(check)
    assert await _ledger(app, customer["contract_id"]) == ledger_before  # finance still reconciles
    async with app.state.db.sessions() as session:
        bodies = list(await session.scalars(select(StripeEventRow.payload)))
        assert not any(customer["email"] in body for body in bodies)
        # The events kept for replay never held the person: ids and facts only.
        told = list(await session.scalars(select(EventRow.data)))
        assert told and not any(customer["email"] in data or "Erin" in data for data in told)
        assert not await session.scalar(select(func.count()).select_from(PageSessionRow))
        assert await session.get(IdempotentRequestRow, (keys.ids["checkout"], key)) is None
        queued = await session.scalar(
            text("SELECT count(*) FROM pgqueuer WHERE entrypoint = :job"), {"job": jobs.CUSTOMER_CHANGED}
        )
    assert queued  # Stripe's Customer gets the tombstone through the job
    assert all(customer["email"] not in letter.read_text() for letter in outbox.glob("*.eml"))

    again = await shop.call("POST", f"/v1/customers/{customer['id']}/erase", "admin")
    assert again["already_erased"] and again["erased_at"] == erased["erased_at"]


async def test_an_erased_customer_stays_erased(shop: Shop, client: httpx.AsyncClient, keys: Keys) -> None:
    """Nothing about them is recorded again: not their name, nor a product, a contract or a
    contract moved to them; their contracts keep answering the check."""
    customer, _ = await _sold(shop, client, keys)
    mine = await shop.sell()  # another customer's contract
    theirs = await shop.product(customer["id"])  # offered before the erasure, bought after it
    token = await shop.offer_token(theirs, "test-screen-guard")
    product = {
        "sku": "PHONE-1",
        "category": "phone",
        "price": {"amount": 80000, "currency": "USD"},
        "purchase_date": dt.date.today().isoformat(),
    }
    await shop.call("POST", f"/v1/customers/{customer['id']}/erase", "admin")

    tries = [
        ("PATCH", f"/v1/customers/{customer['id']}", {"name": "Back", "email": "back@example.com"}),
        ("POST", "/v1/products", {**product, "serial": "SN-ERASED-1", "customer_id": customer["id"]}),
        ("POST", f"/v1/contracts/{mine['id']}/transfer", {"customer_id": customer["id"]}),
        (
            "POST",
            "/v1/contracts",
            {"offer_token": token, "customer_id": customer["id"], "product_id": theirs["id"]},
        ),
        (
            "POST",
            "/v1/checkouts",
            {"offer_token": token, "customer_id": customer["id"], "product_id": theirs["id"]},
        ),
    ]
    for method, path, body in tries:
        answer = await client.request(method, path, json=body, headers=keys.auth("admin"))
        assert answer.status_code == 409, (path, answer.text)
        assert "erased" in answer.json()["detail"]
    row = await shop.call("GET", f"/v1/customers/{customer['id']}", "support")
    assert (row["name"], row["email"]) == (TOMBSTONE, None)
    assert (await shop.check(serial=customer["serial"]))["covered"] is True  # their contracts go on
    # A claim filed since, in their words, goes with a second erasure.
    await shop.claim(
        contract_id=customer["contract_id"],
        incident_date=dt.datetime.now(ZoneInfo("America/Chicago")).date().isoformat(),
        description="Erin again, at Storgatan 1",
    )
    again = await shop.call("POST", f"/v1/customers/{customer['id']}/erase", "admin")
    assert again["already_erased"]
    export = await shop.call("GET", f"/v1/customers/{customer['id']}/export", "support")
    assert [c["description"] for c in export["claims"]] == [None, None]


async def test_an_erasure_racing_changes_to_the_person_still_erases(
    shop: Shop, client: httpx.AsyncClient, keys: Keys
) -> None:
    """Changes in flight when the erasure comes either commit before it (and are erased) or are
    refused after it: none writes the person back."""
    customer = await shop.customer()
    path = f"/v1/customers/{customer['id']}"

    async def change(n: int) -> int:
        answer = await client.patch(path, json={"name": f"Back {n}"}, headers=keys.auth("admin"))
        return answer.status_code

    erase = client.post(f"{path}/erase", headers=keys.auth("admin"))
    *changed, erased = await asyncio.gather(*(change(n) for n in range(8)), erase)
    assert erased.status_code == 200 and set(changed) <= {200, 409}, changed
    row = await shop.call("GET", path, "support")
    assert (row["name"], row["email"]) == (TOMBSTONE, None)


def test_redaction_empties_personal_fields_at_any_depth_and_keeps_the_rest() -> None:
    event = {
        "id": "evt_1",
        "data": {
            "object": {
                "customer": "cus_1",
                "amount": 1299,
                "billing_details": {"name": "Erin", "email": "e@x.se"},
                "charges": [{"receipt_email": "e@x.se", "amount": 1299}],
            }
        },
    }
    clean = redacted(event)
    assert clean["data"]["object"]["billing_details"] is None
    assert clean["data"]["object"]["charges"] == [{"receipt_email": None, "amount": 1299}]
    assert (clean["id"], clean["data"]["object"]["customer"], clean["data"]["object"]["amount"]) == (
        "evt_1",
        "cus_1",
        1299,
    )


async def _ledger(app: CoverlineApp, contract_id: str) -> list[tuple[str, int]]:
    async with app.state.db.sessions() as session:
        rows = await session.execute(
            select(LedgerEntryRow.kind, LedgerEntryRow.amount)
            .where(LedgerEntryRow.contract_id == contract_id)
            .order_by(LedgerEntryRow.id)
        )
        return [(kind, amount) for kind, amount in rows]
