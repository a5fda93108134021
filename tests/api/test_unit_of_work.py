"""The unit of work keeps every product's snapshot equal to one rebuilt from the record, whatever
sequence of use cases ran, and a session's unit cannot commit without rewriting them."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from api.app import CoverlineApp
from entitlements.store.snapshots import build_snapshot, decode_snapshot
from entitlements.store.tables import ProductRow
from entitlements.store.unit_of_work import commit, touch, unit_of_work
from tests.api.shop import Shop, publish_test_plans
from tests.conftest import Keys

ACTIONS = (
    "sell",
    "second_contract",
    "pay",
    "past_due",
    "cancel",
    "claim",
    "void",
    "transfer",
    "new_email",
)


class World:
    """What the steps made so far, for later steps to pick from."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.customers: list[dict[str, Any]] = []
        self.products: list[dict[str, Any]] = []
        self.contracts: list[dict[str, Any]] = []
        self.claims: list[str] = []

    async def step(self, action: str, pick: int) -> None:
        shop = self.shop
        if action == "sell" or not self.contracts:
            contract = await shop.sell(pay=False)
            self.customers.append(contract["customer"])
            self.products.append({"id": contract["product_id"], "customer": contract["customer"]})
            self.contracts.append(contract)
            return
        contract = self.contracts[pick % len(self.contracts)]
        if action == "second_contract":
            product = self.products[pick % len(self.products)]
            registered = await shop.call("GET", f"/v1/products/{product['id']}", "support")
            owner = await shop.call("GET", f"/v1/customers/{registered['customer_id']}", "support")
            self.contracts.append(await shop.open_contract(owner, registered, "test-monthly"))
        elif action in ("pay", "past_due", "cancel"):
            action = {"pay": "payment"}.get(action, action)
            await self._maybe("POST", f"/v1/contracts/{contract['id']}/lifecycle", "admin", action=action)
        elif action == "claim":
            response = await shop.client.post(
                "/v1/claims",
                json={
                    "reference": f"t-{secrets.token_hex(4)}",
                    "contract_id": contract["id"],
                    "incident_kind": "screen",
                    "incident_date": "2026-01-01" if pick % 3 == 0 else _today(),
                    "amount": {"amount": 1000 + pick, "currency": "USD"},
                },
                headers=shop.keys.auth("support"),
            )
            assert response.status_code < 500, response.text
            if response.status_code == 201:
                self.claims.append(response.json()["id"])
        elif action == "void" and self.claims:
            await self._maybe("POST", f"/v1/claims/{self.claims[pick % len(self.claims)]}/void", "support")
        elif action == "transfer" and len(self.customers) > 1:
            owner = self.customers[pick % len(self.customers)]
            await self._maybe(
                "POST", f"/v1/contracts/{contract['id']}/transfer", "support", customer_id=owner["id"]
            )
        elif action == "new_email":
            owner = self.customers[pick % len(self.customers)]
            await self._maybe(
                "PATCH",
                f"/v1/customers/{owner['id']}",
                "support",
                email=f"p{secrets.token_hex(3)}@example.com",
            )

    async def _maybe(self, method: str, path: str, who: str, **body: Any) -> None:
        """A step the rules may refuse (a transition not allowed now): only a 5xx is wrong."""
        if path.endswith("/lifecycle"):
            body["reference"] = f"ref-{secrets.token_hex(4)}"
        response = await self.shop.client.request(method, path, json=body, headers=self.shop.keys.auth(who))
        assert response.status_code < 500, response.text


def _today() -> str:
    return dt.date.today().isoformat()


async def stored_and_rebuilt(app: CoverlineApp, product_ids: list[str]) -> list[tuple[Any, Any]]:
    async with app.state.db.sessions() as session:
        run = await unit_of_work(session)
        pairs = []
        for product_id in product_ids:
            raw = await session.scalar(select(ProductRow.entitlement).where(ProductRow.id == product_id))
            pairs.append((decode_snapshot(raw or ""), await build_snapshot(run, product_id)))
        await session.rollback()
    return pairs


@pytest.fixture
async def world(client: httpx.AsyncClient, app: CoverlineApp, keys: Keys) -> World:
    await publish_test_plans(app)
    return World(Shop(client, keys))


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 50)), min_size=1, max_size=10))
async def test_every_stored_snapshot_equals_one_rebuilt_from_the_record(
    app: CoverlineApp, world: World, steps: list[tuple[str, int]]
) -> None:
    world.customers, world.products, world.contracts, world.claims = [], [], [], []
    for action, pick in steps:
        await world.step(action, pick)
        for stored, rebuilt in await stored_and_rebuilt(app, [p["id"] for p in world.products]):
            assert stored == rebuilt, (action, pick)


async def test_a_session_that_touched_a_product_cannot_commit_past_the_unit_of_work(
    app: CoverlineApp, world: World
) -> None:
    contract = await world.shop.sell(pay=False)
    async with app.state.db.sessions() as session:
        touch(session, contract["product_id"])
        with pytest.raises(RuntimeError, match="not written: end with `commit`"):
            await session.commit()
    async with app.state.db.sessions() as session:
        touch(session, contract["product_id"])
        await commit(session)  # rewrites, then commits
