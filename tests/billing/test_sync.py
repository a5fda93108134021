"""Webhooks lost on purpose, repaired by syncing the gateway's events through the same handler."""

import datetime as dt

import httpx
import pytest
from sqlalchemy import select

from api.app import CoverlineApp
from billing.sandbox import SandboxGateway
from billing.tables import LedgerEntryRow
from billing.webhooks.service import sync_events
from tests.api.shop import Shop, publish_test_plans
from tests.conftest import Keys


@pytest.fixture
async def shop(client: httpx.AsyncClient, app: CoverlineApp, keys: Keys) -> Shop:
    await publish_test_plans(app)
    return Shop(client, keys)


async def test_lost_webhooks_are_repaired_by_a_sync(shop: Shop, app: CoverlineApp) -> None:
    sandbox: SandboxGateway = app.state.gateway
    since = sandbox.now() - dt.timedelta(minutes=1)

    async def lose_everything(to: object) -> int:
        sandbox.outbox.clear()
        return 0

    sandbox.deliver = lose_everything  # type: ignore[method-assign]
    sold = [await shop.checkout("test-screen-guard") for _ in range(2)]
    monthly = await shop.checkout("test-monthly")
    ids = [s["contract"]["id"] for s in [*sold, monthly]]
    assert [(await shop.call("GET", f"/v1/contracts/{i}", "support"))["status"] for i in ids] == [
        "pending_payment"
    ] * 3

    report = await sync_events(app.state.db.unit_of_work, sandbox, since)
    assert report.applied >= 3
    assert [(await shop.call("GET", f"/v1/contracts/{i}", "support"))["status"] for i in ids] == [
        "active"
    ] * 3
    async with app.state.db.sessions() as session:
        kinds = sorted(e.kind for e in await session.scalars(select(LedgerEntryRow)))
    assert kinds == ["fee"] * 3 + ["sale"] * 3

    again = await sync_events(app.state.db.unit_of_work, sandbox, since)
    assert (again.applied, again.duplicates + again.ignored) == (0, report.seen)
