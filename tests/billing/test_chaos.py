"""500 events for 100 contracts, delivered shuffled with 30 % duplicates, 8 at a time, on
PostgreSQL: the same contracts, coverage periods and ledger as delivering them in order."""

import asyncio
import datetime as dt
import random
from typing import Any

import httpx
import msgspec
from sqlalchemy import select, text

from api.app import CoverlineApp
from billing.tables import LedgerEntryRow
from entitlements.coverage import add_months
from entitlements.store.tables import ContractRow, CoveragePeriodRow
from entitlements.store.unit_of_work import commit, touch
from tests.api.shop import Shop, publish_test_plans
from tests.billing.test_webhooks import deliver
from tests.conftest import Keys

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def ts(at: dt.datetime) -> int:
    return int(at.timestamp())


def invoice(contract_id: str, n: int, reason: str, status: str) -> dict[str, Any]:
    start, end = add_months(T0, n - 1), add_months(T0, n)
    return {
        "id": f"in_{contract_id}_{n}",
        "object": "invoice",
        "status": status,
        "billing_reason": reason,
        "amount_paid": 999 if status == "paid" else 0,
        "amount_due": 999,
        "currency": "usd",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {
                "subscription": f"sub_{contract_id}",
                "metadata": {"contract_id": contract_id},
            },
        },
        "lines": {"object": "list", "data": [{"period": {"start": ts(start), "end": ts(end)}}]},
        "payments": {
            "object": "list",
            "data": [{"payment": {"type": "payment_intent", "payment_intent": f"pi_{contract_id}_{n}"}}],
        },
    }


def story(index: int, contract_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Five events: subscribed, two paid months, then either a failure and a lapse, or a third
    paid month and a refund of the first."""
    sub = {
        "id": f"sub_{contract_id}",
        "object": "subscription",
        "status": "active",
        "metadata": {"contract_id": contract_id},
    }
    events = [
        ("customer.subscription.created", "s", sub),
        ("invoice.paid", "1", invoice(contract_id, 1, "subscription_create", "paid")),
        ("invoice.paid", "2", invoice(contract_id, 2, "subscription_cycle", "paid")),
    ]
    if index % 2 == 0:
        ended = {
            **sub,
            "status": "canceled",
            "cancellation_details": {"reason": "payment_failed"},
            "ended_at": ts(add_months(T0, 2) + dt.timedelta(days=20)),
        }
        events += [
            ("invoice.payment_failed", "3f", invoice(contract_id, 3, "subscription_cycle", "open")),
            ("customer.subscription.deleted", "d", ended),
        ]
    else:
        refund = {
            "id": f"re_{contract_id}",
            "object": "refund",
            "amount": 500,
            "currency": "usd",
            "status": "succeeded",
            "payment_intent": f"pi_{contract_id}_1",
            "metadata": {"contract_id": contract_id},
        }
        events += [
            ("invoice.paid", "3", invoice(contract_id, 3, "subscription_cycle", "paid")),
            ("refund.created", "r", refund),
        ]
    return [(f"evt_{contract_id}_{suffix}", kind, obj) for kind, suffix, obj in events]


def raw(event_id: str, kind: str, obj: dict[str, Any], created: int) -> bytes:
    return msgspec.json.encode(
        {"id": event_id, "object": "event", "type": kind, "created": created, "data": {"object": obj}}
    )


async def final_state(app: CoverlineApp, ids: list[str]) -> tuple[Any, ...]:
    async with app.state.db.sessions() as session:
        contracts = [
            (c.id, c.status, c.grace_until, c.ended_at, c.stripe_subscription_id)
            for c in await session.scalars(
                select(ContractRow).where(ContractRow.id.in_(ids)).order_by(ContractRow.id)
            )
        ]
        periods = sorted(
            (p.contract_id, p.starts_at, p.ends_at, p.source_ref)
            for p in await session.scalars(select(CoveragePeriodRow))
        )
        ledger = sorted(
            (
                e.entry_key,
                e.kind,
                e.amount,
                e.currency,
                e.contract_id,
                e.stripe_invoice,
                e.stripe_refund,
                e.period_start,
            )
            for e in await session.scalars(select(LedgerEntryRow))
        )
    return contracts, periods, ledger


async def reset(app: CoverlineApp, ids: list[str]) -> None:
    async with app.state.db.sessions() as session:
        for table in ("coverage_periods", "contract_events", "ledger_entries", "stripe_events"):
            await session.execute(text(f"DELETE FROM {table}"))
        await session.execute(
            text(
                "UPDATE contracts SET status = 'pending_payment', grace_until = NULL, ended_at = NULL, stripe_subscription_id = NULL"
            )
        )
        products = list(await session.scalars(select(ContractRow.product_id).where(ContractRow.id.in_(ids))))
        touch(session, *products)
        await commit(session)


async def test_shuffled_duplicated_concurrent_delivery_converges(
    database_url: str, app: CoverlineApp, client: httpx.AsyncClient, keys: Keys
) -> None:
    await publish_test_plans(app)
    shop = Shop(client, keys)
    ids = [(await shop.sell("test-monthly", pay=False))["id"] for _ in range(100)]
    events = []
    for index, contract_id in enumerate(ids):
        for order, (event_id, kind, obj) in enumerate(story(index, contract_id)):
            events.append(raw(event_id, kind, obj, ts(T0) + order * 86_400))
    assert len(events) == 500

    for body in events:  # in order, one at a time
        assert (await deliver(client, body)).status_code == 200
    in_order = await final_state(app, ids)
    statuses = [c[1] for c in in_order[0]]
    assert statuses.count("lapsed") == 50
    assert statuses.count("active") == 50

    await reset(app, ids)
    rng = random.Random(20261123)
    chaos = events + rng.sample(events, k=150)  # 30 % delivered twice
    rng.shuffle(chaos)
    gate = asyncio.Semaphore(8)

    async def send(body: bytes) -> int:
        async with gate:
            for _ in range(20):  # a 503 (contract row busy elsewhere) is retried, as Stripe does
                response = await deliver(client, body)
                if response.status_code != 503:
                    return response.status_code
            return response.status_code

    codes = await asyncio.gather(*(send(body) for body in chaos))
    assert set(codes) == {200}
    after = await final_state(app, ids)
    for part, before_part, after_part in zip(
        ("contracts", "periods", "ledger"), in_order, after, strict=True
    ):
        assert sorted(set(after_part) - set(before_part)) == [], (
            part,
            sorted(set(before_part) - set(after_part))[:3],
        )
    assert after == in_order
