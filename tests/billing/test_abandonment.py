"""Unpaid checkouts are abandoned when their offer expires, and their Stripe objects let go."""

import datetime as dt

import httpx
import msgspec
import pytest
from sqlalchemy import text, update

from api.app import CoverlineApp
from billing.checkout.abandonment import Release, abandon_expired, release_checkout
from billing.checkout.service import session_expiry
from billing.sandbox import SandboxGateway
from entitlements import jobs
from entitlements.store.base import utcnow
from entitlements.store.tables import ContractRow
from tests.api.shop import Shop, publish_test_plans
from tests.conftest import Keys


@pytest.fixture
async def shop(client: httpx.AsyncClient, app: CoverlineApp, keys: Keys) -> Shop:
    await publish_test_plans(app)
    return Shop(client, keys)


async def releases(app: CoverlineApp) -> list[Release]:
    async with app.state.db.sessions() as session:
        rows = await session.execute(
            text("SELECT payload FROM pgqueuer WHERE entrypoint = :job ORDER BY id"),
            {"job": jobs.RELEASE_CHECKOUT},
        )
        return [msgspec.json.decode(r[0], type=Release) for r in rows]


async def test_an_unpaid_contract_is_abandoned_when_its_offer_expires_and_stripe_lets_go(
    shop: Shop, app: CoverlineApp
) -> None:
    gateway: SandboxGateway = app.state.gateway
    page = await shop.checkout("test-screen-guard", card=None)  # Stripe.js never confirmed it
    monthly = await shop.checkout("test-monthly", card=None)  # its first invoice never paid
    request, _ = await shop.checkout_request("test-screen-guard", card=None)
    hosted = await shop.call(
        "POST",
        "/v1/checkouts",
        "checkout",
        json={
            **request,
            "hosted": {"success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no"},
        },
    )
    paid = await shop.checkout("test-screen-guard")
    unpaid = [page, monthly, hosted]
    ids = [c["contract"]["id"] for c in [*unpaid, paid]]
    assert await abandon_expired(app.state.db.unit_of_work, utcnow()) == 0  # offers still valid

    async with app.state.db.sessions() as session, session.begin():
        await session.execute(
            update(ContractRow)
            .where(ContractRow.id.in_(ids))
            .values(offer_expires_at=utcnow() - dt.timedelta(seconds=1))
        )
    assert await abandon_expired(app.state.db.unit_of_work, utcnow()) == 3
    statuses = [(await shop.call("GET", f"/v1/contracts/{i}", "support"))["status"] for i in ids]
    assert statuses == ["abandoned", "abandoned", "abandoned", "active"]  # a paid one stays
    assert await abandon_expired(app.state.db.unit_of_work, utcnow()) == 0

    queued = await releases(app)
    assert sorted(r.contract_id for r in queued) == sorted(ids[:3])
    for release in queued:
        await release_checkout(gateway, release)
    assert gateway.payment_intents[page["payment_intent"]].status == "canceled"
    assert gateway.subscriptions[monthly["subscription"]].status == "canceled"
    [session] = gateway.checkout_sessions.values()
    assert session.status == "expired"
    for release in queued:  # a retried job changes nothing
        await release_checkout(gateway, release)
    assert gateway.payment_intents[page["payment_intent"]].status == "canceled"


def test_a_hosted_page_lives_as_long_as_its_offer_within_stripes_bounds() -> None:
    now = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
    assert session_expiry(now + dt.timedelta(hours=1), now) == now + dt.timedelta(hours=1)
    assert session_expiry(now + dt.timedelta(minutes=5), now) == now + dt.timedelta(minutes=31)
    assert session_expiry(now + dt.timedelta(days=3), now) == now + dt.timedelta(hours=23, minutes=59)
