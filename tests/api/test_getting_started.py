"""A few days after a sale, one letter in the customer's language: what the plan includes beyond
repair, and the training resources the catalog gives for the product's category."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import CoverlineApp, create_app
from entitlements import outreach
from entitlements.catalog import ProductCategory, Resource, ResourceText
from entitlements.store.plans import PlanRepository
from entitlements.store.resources import replace_resources, resources_for
from tests.api.shop import Shop
from tests.api.test_benefits import PLAN
from tests.api.test_events import FAST, drain
from tests.api.test_mail import Inbox, inbox, text_of
from tests.api.test_outreach import events, run_sweep
from tests.conftest import make_settings

__all__ = ["inbox"]  # the fixture, for this module's tests
GUIDE = Resource(
    ProductCategory.PHONE,
    {
        "en": ResourceText("Your first week with your phone", "https://learn.example/en/phone"),
        "sv": ResourceText("Din första vecka med telefonen", "https://learn.example/sv/phone"),
    },
)
LATER = dt.timedelta(days=3, hours=1)


@pytest.fixture
async def app(database_url: str, inbox: tuple[Inbox, str]) -> AsyncIterator[CoverlineApp]:
    yield create_app(make_settings(database_url, smtp_url=inbox[1], **FAST))


@pytest.fixture
async def desk(shop: Shop, app: CoverlineApp) -> Shop:
    async with app.state.db.sessions() as session, session.begin():
        await PlanRepository(session).publish([PLAN])
    return shop


async def test_three_days_after_a_sale_the_services_and_the_training_go_out_once(
    desk: Shop, app: CoverlineApp, inbox: tuple[Inbox, str]
) -> None:
    received, _ = inbox
    async with app.state.db.sessions() as session, session.begin():
        assert await replace_resources(session, [GUIDE]) == 1
    contract = await desk.sell("test-benefits")
    now = dt.datetime.now(dt.UTC)
    assert (await run_sweep(app, now + dt.timedelta(days=2))).getting_started == 0  # too soon
    assert (await run_sweep(app, now + LATER)).getting_started == 1
    assert (await run_sweep(app, now + LATER)).getting_started == 0  # once
    [event] = await events(desk, "contract.getting_started")
    assert (event["data"]["contract_id"], event["data"]["category"]) == (contract["id"], "phone")
    await drain(app)
    [letter] = [m for m in received.letters if "Getting started" in str(m["Subject"])]
    text = text_of(letter)
    assert str(letter["Subject"]) == "Getting started with Screen Guard"
    assert "Technical support session: included, up to 2 in any 12 months." in text
    assert "Installation: a technician comes to you." in text
    assert "Your first week with your phone: https://learn.example/en/phone" in text
    assert "Claims:" not in text  # the services, not the whole terms


async def test_a_sale_with_nothing_to_say_is_noted_and_never_written_to(
    desk: Shop, app: CoverlineApp
) -> None:
    await desk.sell()  # Screen Guard: no services, no support, no training for phones loaded
    now = dt.datetime.now(dt.UTC)
    assert (await run_sweep(app, now + LATER)).getting_started == 0
    async with app.state.db.sessions() as session, session.begin():
        await replace_resources(session, [GUIDE])
    assert (await run_sweep(app, now + LATER)).getting_started == 0  # it was noted the first time


async def test_a_sweep_past_one_batch_writes_every_sale_once(
    desk: Shop, app: CoverlineApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches follow one another by (sold_at, id): a sale noted silently in one batch (no
    services) is not read again, and none is skipped or written twice."""
    monkeypatch.setattr(outreach, "BATCH", 2)
    sold = [await desk.sell("test-benefits" if i % 3 else "test-screen-guard") for i in range(7)]
    worth = sorted(c["id"] for i, c in enumerate(sold) if i % 3)
    now = dt.datetime.now(dt.UTC)
    assert (await run_sweep(app, now + LATER)).getting_started == len(worth)
    assert (await run_sweep(app, now + LATER)).getting_started == 0
    written = await events(desk, "contract.getting_started")
    assert sorted(e["data"]["contract_id"] for e in written) == worth


async def test_resources_are_in_the_customers_language_else_english_and_a_load_replaces_them(
    app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    async with app.state.db.sessions() as session, session.begin():
        await replace_resources(
            session, [GUIDE, Resource(ProductCategory.TV, {"en": ResourceText("TV", "https://t.example")})]
        )
        assert [r.title for r in await resources_for(session, "phone", "sv")] == [
            "Din första vecka med telefonen"
        ]
        assert [r.title for r in await resources_for(session, "phone", "vi")] == [
            "Your first week with your phone"
        ]
        await replace_resources(session, [])
        assert await resources_for(session, "phone", "en") == []
