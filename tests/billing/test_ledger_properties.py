"""The ledger under any delivery: each money movement once, whatever the order and duplicates."""

import secrets

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from api.app import CoverlineApp
from billing.tables import LedgerEntryRow
from tests.api.shop import Shop, publish_test_plans
from tests.billing.test_webhooks import deliver, event
from tests.conftest import Keys


@pytest.fixture
async def contract_id(client: httpx.AsyncClient, app: CoverlineApp, keys: Keys) -> str:
    await publish_test_plans(app)
    contract: dict[str, str] = await Shop(client, keys).sell(pay=False)
    return contract["id"]


refunds = st.lists(st.integers(1, 2000), max_size=4)
plans = st.tuples(refunds, st.lists(st.integers(0, 10), max_size=6), st.randoms(use_true_random=False))


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=plans)
async def test_each_movement_is_in_the_ledger_once(
    database_url: str,
    app: CoverlineApp,
    client: httpx.AsyncClient,
    contract_id: str,
    plan: tuple[list[int], list[int], object],
) -> None:
    amounts, repeats, rng = plan
    tag = secrets.token_hex(4)
    pi = {
        "id": f"pi_{tag}",
        "object": "payment_intent",
        "amount": 7900,
        "currency": "usd",
        "metadata": {"contract_id": contract_id},
    }
    bodies = [event(f"evt_{tag}_sale", "payment_intent.succeeded", pi)]
    for n, amount in enumerate(amounts):
        refund = {
            "id": f"re_{tag}_{n}",
            "object": "refund",
            "amount": amount,
            "currency": "usd",
            "status": "succeeded",
            "payment_intent": pi["id"],
        }
        bodies.append(event(f"evt_{tag}_re{n}", "refund.created", refund))
    deliveries = bodies + [bodies[i % len(bodies)] for i in repeats]  # duplicates
    rng.shuffle(deliveries)  # type: ignore[attr-defined]
    for body in deliveries:
        response = await deliver(client, body)
        assert response.status_code == 200
    async with app.state.db.sessions() as session:
        rows = list(
            await session.scalars(
                select(LedgerEntryRow).where(LedgerEntryRow.stripe_payment_intent == pi["id"])
            )
        )
    assert sorted(r.amount for r in rows) == sorted([7900, *(-a for a in amounts)])
    assert len({r.entry_key for r in rows}) == len(rows)
    assert sum(r.amount for r in rows) == 7900 - sum(amounts)
