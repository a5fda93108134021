"""The lifecycle write path's statements: the record a contract's life leaves, and a product's
snapshot rebuilt under its row lock."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
from typing import Any

import msgspec
from sqlalchemy import func, select, text

from api.app import CoverlineApp
from entitlements.contracts import service as services
from entitlements.contracts.rules import PAYMENT, LifecycleEvent
from entitlements.contracts.store import LifecycleRecord
from entitlements.coverage import ContractStatus
from entitlements.errors import Conflict
from entitlements.store import audit
from entitlements.store.snapshots import build_snapshot, decode_snapshot
from entitlements.store.tables import (
    AuditEventRow,
    ContractEventRow,
    ContractRow,
    CoveragePeriodRow,
    EventRow,
    ProductRow,
)
from entitlements.store.unit_of_work import UnitOfWork, unit_of_work
from tests.api.shop import Shop, customer_today

DAY = dt.timedelta(days=1)


async def _life(shop: Shop, start: dt.datetime) -> dict[str, Any]:
    """Sold, paid, a renewal fails, paid late, then cancelled: every kind of lifecycle write."""
    contract = await shop.sell("test-monthly", pay=False)
    cid = contract["id"]  # references are unique across contracts: each names its contract
    await shop.lifecycle(cid, "payment", f"{cid}-inv-1", at=start)
    await shop.lifecycle(cid, "payment", f"{cid}-inv-1", at=start)  # a replay: nothing more
    await shop.lifecycle(cid, "past_due", f"{cid}-inv-2", at=start + 31 * DAY)
    await shop.lifecycle(cid, "payment", f"{cid}-inv-2", at=start + 33 * DAY)
    await shop.lifecycle(cid, "cancel", f"{cid}-cancel", at=start + 40 * DAY)
    return contract


async def _record_of(app: CoverlineApp, contract: dict[str, Any]) -> dict[str, Any]:
    """The rows the lifecycle wrote, with the contract's own id written as `C`."""
    cid = contract["id"]
    async with app.state.db.sessions() as session:
        row = await session.get(ContractRow, cid)
        assert row is not None
        periods = (
            await session.execute(
                select(CoveragePeriodRow.starts_at, CoveragePeriodRow.ends_at, CoveragePeriodRow.source_ref)
                .where(CoveragePeriodRow.contract_id == cid)
                .order_by(CoveragePeriodRow.starts_at)
            )
        ).all()
        facts = (
            await session.execute(
                select(ContractEventRow.reference, ContractEventRow.kind, ContractEventRow.applied_at)
                .where(ContractEventRow.contract_id == cid)
                .order_by(ContractEventRow.reference, ContractEventRow.kind)
            )
        ).all()
        audits = (
            await session.execute(
                select(AuditEventRow.action, AuditEventRow.actor, AuditEventRow.changes)
                .where(AuditEventRow.entity_id == cid, AuditEventRow.action != "opened")
                .order_by(AuditEventRow.id)
            )
        ).all()
        raw = await session.scalar(select(ProductRow.entitlement).where(ProductRow.id == row.product_id))
    snapshot = decode_snapshot(raw or "")
    (entry,) = snapshot.contracts

    def unnamed(rows: list[Any]) -> list[tuple[Any, ...]]:
        return [tuple(v.replace(cid, "C") if isinstance(v, str) else v for v in row) for row in rows]

    return {
        "contract": (row.status, row.grace_until, row.ended_at, row.revision),
        "periods": unnamed(list(periods)),
        "facts": unnamed(list(facts)),
        "audits": unnamed(list(audits)),
        "snapshot": (entry.status, entry.grace_until, entry.ended_at, entry.periods, entry.claims),
    }


async def test_a_contracts_life_leaves_one_fact_per_reference_and_kind_and_a_snapshot_that_agrees(
    shop: Shop, app: CoverlineApp
) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + DAY
    record = await _record_of(app, await _life(shop, start))
    status, grace_until, ended_at, _revision = record["contract"]
    assert status == ContractStatus.CANCELLED.value
    keys = [(fact[0], fact[1]) for fact in record["facts"]]
    assert keys == sorted(set(keys))  # one fact per reference and kind
    # The second invoice failed, then was paid: two facts under its own reference, no suffix.
    assert [kind for reference, kind in keys if reference == "C-inv-2"] == ["past_due", "payment"]
    assert [a[0] for a in record["audits"]][-1] == "cancelled"
    # Cancelled 40 days in: the second month's period is cut there.
    assert record["periods"][-1][1] == start + 40 * DAY
    assert record["snapshot"][:3] == (ContractStatus.CANCELLED, grace_until, ended_at)


async def test_a_stored_snapshot_equals_one_rebuilt_from_the_record(shop: Shop, app: CoverlineApp) -> None:
    contract = await shop.sell("test-screen-guard")
    await shop.claim(contract_id=contract["id"])
    async with app.state.db.sessions() as session, session.begin():
        run = await unit_of_work(session)
        rebuilt = await build_snapshot(run, contract["product_id"])
        history = await LifecycleRecord(run).history(contract["id"])
        raw = await session.scalar(
            select(ProductRow.entitlement).where(ProductRow.id == contract["product_id"])
        )
    assert rebuilt == decode_snapshot(raw or "")
    assert rebuilt is not None and len(rebuilt.contracts[0].claims) == 1
    assert history[0] and history[1]


async def _two_paid_contracts(shop: Shop) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A product with two contracts, each paid."""
    customer = await shop.customer()
    product = await shop.product(customer["id"])
    first = await shop.open_contract(customer, product, "test-screen-guard")
    second = await shop.open_contract(customer, product, "test-monthly")
    for contract in (first, second):
        await shop.lifecycle(contract["id"], "payment", f"pay-{contract['id']}")
    return product, first, second


async def _stored_statuses(app: CoverlineApp, product_id: str) -> dict[str, ContractStatus]:
    """Each contract's status in the product's stored snapshot."""
    async with app.state.db.sessions() as session:
        raw = await session.scalar(select(ProductRow.entitlement).where(ProductRow.id == product_id))
    return {c.contract_id: c.status for c in decode_snapshot(raw or "").contracts}


async def _until_a_writer_waits_for_a_lock(app: CoverlineApp, whose: str) -> None:
    """Return once a connection to the test's database waits for a lock (within 4 s)."""
    for _ in range(200):
        async with app.state.db.sessions() as session:
            waiting = await session.scalar(
                select(func.count())
                .select_from(text("pg_stat_activity"))
                .where(text("datname = current_database() AND wait_event_type = 'Lock'"))
            )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the second writer never waited for {whose} lock")


async def test_two_contracts_of_one_product_never_overwrite_each_others_snapshot(
    shop: Shop, app: CoverlineApp
) -> None:
    """Two units of work change two contracts of the same product at once. Nothing of the product
    is locked before COMMIT, so the second commits while the first is still open; the first then
    locks the product's row and rebuilds its snapshot from a record that includes the second's
    change, instead of writing back what it could see when it began."""
    product, first, second = await _two_paid_contracts(shop)
    now = dt.datetime.now(dt.UTC)

    async def cancel(contract: dict[str, Any], reference: str) -> None:
        async with app.state.db.unit_of_work() as run:
            await services.end_contract(
                run, contract["id"], target=ContractStatus.CANCELLED, reference=reference, at=now, actor="t"
            )
            if contract is first:
                await asyncio.wait_for(cancel(second, "c2"), timeout=10)

    await cancel(first, "c1")

    assert await _stored_statuses(app, product["id"]) == {
        first["id"]: ContractStatus.CANCELLED,
        second["id"]: ContractStatus.CANCELLED,
    }


async def test_a_writer_that_waited_for_the_products_lock_reads_what_the_other_committed(
    shop: Shop, app: CoverlineApp
) -> None:
    """The statement that locks the product also reads its record. When it waited for another
    writer's lock, the rows it joined are as they were before that writer committed: the second
    writer must see that the product moved on, and read the record again."""
    product, first, second = await _two_paid_contracts(shop)
    now = dt.datetime.now(dt.UTC)

    async def cancel(run: UnitOfWork, contract: dict[str, Any]) -> None:
        await services.end_contract(
            run,
            contract["id"],
            target=ContractStatus.CANCELLED,
            reference=f"c-{contract['id']}",
            at=now,
            actor="t",
        )

    async def second_writer() -> None:
        async with app.state.db.unit_of_work() as run:
            await cancel(run, second)  # its snapshot's rewrite waits for the first's lock

    async with app.state.db.unit_of_work() as run:
        await cancel(run, first)
        assert await build_snapshot(run, product["id"]) is not None  # the product's lock, held
        waiting = asyncio.create_task(second_writer())
        await _until_a_writer_waits_for_a_lock(app, "the product's")
    await asyncio.wait_for(waiting, timeout=10)

    assert await _stored_statuses(app, product["id"]) == {
        first["id"]: ContractStatus.CANCELLED,
        second["id"]: ContractStatus.CANCELLED,
    }


async def test_a_products_rewrite_its_events_and_their_deliveries_take_two_statements(
    shop: Shop, app: CoverlineApp
) -> None:
    """Before COMMIT, a unit that touched a product sends two statements: the lock with the read
    of the record and of the endpoints subscribed to events, then the deliveries' jobs, which
    carry the snapshot and the events (nobody reads their answers)."""
    contract = await shop.sell("test-screen-guard")
    await shop.call("POST", "/v1/webhook-endpoints", "admin", json={"url": "http://127.0.0.1:9/hooks"})
    sent: list[str] = []

    def log(query: Any) -> None:
        sent.append(query.query)

    async with app.state.db.unit_of_work() as run:
        run.touch(contract["product_id"])
        await run.before_commit()  # asyncpg learns the queue's types on first use: not counted
        run.connection.add_query_logger(log)
        run.touch(contract["product_id"])
        await run.before_commit()
        await asyncio.sleep(0)  # asyncpg tells its loggers on the loop's next turn
        run.connection.remove_query_logger(log)
    assert len(sent) == 2, sent
    assert "FOR NO KEY UPDATE OF products" in sent[0] and "webhook_endpoints" in sent[0]
    assert all(table in sent[1] for table in ("UPDATE products", "INSERT INTO events", "pgqueuer"))
    async with app.state.db.sessions() as session:
        told = await session.scalar(
            select(EventRow.id)
            .where(EventRow.product_id == contract["product_id"], EventRow.type == "coverage.changed")
            .order_by(EventRow.sequence.desc())
            .limit(1)
        )
        deliveries = (
            await session.execute(text("SELECT payload FROM pgqueuer WHERE entrypoint = 'event.deliver'"))
        ).scalars()
        assert told in {msgspec.json.decode(payload)["event_id"] for payload in deliveries}


async def test_the_lock_of_a_paid_contract_reads_its_history_unless_it_waited_for_another_writer(
    shop: Shop, app: CoverlineApp
) -> None:
    """Locking a contract that was ever paid reads its history in the same statement. A lock that
    waited for another writer would read the history as it was before that writer committed: it
    must not hand that history on, and what the writer then reads holds the other's fact."""
    contract = await shop.sell("test-monthly")
    cid = contract["id"]

    async with app.state.db.unit_of_work() as run:
        locked = await LifecycleRecord(run).lock(cid)
    assert locked is not None and locked.history is not None
    assert [f.kind for f in locked.history[0]] == [PAYMENT]
    assert len(locked.history[1]) == 1  # the period the payment bought

    async def second_writer() -> list[tuple[str, str]]:
        async with app.state.db.unit_of_work() as run:
            record = LifecycleRecord(run)
            locked = await record.lock(cid)  # waits for the first writer's lock
            assert locked is not None
            facts, _ = locked.history if locked.history is not None else await record.history(cid)
            return [(f.reference, f.kind) for f in facts]

    async with app.state.db.unit_of_work() as run:
        await services.mark_past_due(
            run, cid, reference=f"{cid}-inv-2", at=dt.datetime.now(dt.UTC), actor="t"
        )
        waiting = asyncio.create_task(second_writer())
        await _until_a_writer_waits_for_a_lock(app, "the contract's")
    assert (f"{cid}-inv-2", ContractStatus.PAST_DUE.value) in await asyncio.wait_for(waiting, timeout=10)


async def test_a_lock_asked_about_a_fact_finds_where_it_was_applied_and_saves_its_statement(
    shop: Shop, app: CoverlineApp
) -> None:
    """The lock reads the contract the fact was applied to, if any, with the history: a fact
    applied nowhere is then recorded with the unit's next statement (no statement of its own), a
    replay writes nothing, and another contract's reference is refused as before."""
    first, other = await shop.sell("test-monthly", pay=False), await shop.sell("test-monthly", pay=False)
    paid = LifecycleEvent.payment(f"{first['id']}-pi", dt.datetime.now(dt.UTC))
    for contract, owner in ((first, None), (first, first["id"]), (other, first["id"])):
        async with app.state.db.unit_of_work() as run:
            sent: list[str] = []
            run.connection.add_query_logger(lambda query, sent=sent: sent.append(query.query))
            record = LifecycleRecord(run)
            locked = await record.lock(contract["id"], fact=paid)
            assert locked is not None and locked.knows(paid) and locked.fact_owner == owner
            try:
                bought = await services.record_payment(
                    run, locked, reference=paid.reference, paid_at=paid.applied_at, actor="t", checked=False
                )
            except Conflict:
                assert contract is other  # the reference is the first contract's
                continue
            await asyncio.sleep(0)  # asyncpg tells its loggers on the loop's next turn
            assert (bought is None) == (owner is not None)
            # What the payment sent after the lock (a new connection first sends asyncpg's own setup).
            after_lock = sent[
                next(i for i, sql in enumerate(sent) if sql.startswith("UPDATE contracts")) + 1 :
            ]
            assert not any("new_fact" in sql or "FROM contract_events" in sql for sql in after_lock), sent
    async with app.state.db.sessions() as session:
        facts = await session.execute(
            select(ContractEventRow.contract_id).where(ContractEventRow.reference == paid.reference)
        )
        assert [row[0] for row in facts] == [first["id"]]
    found = await shop.call("GET", f"/v1/contracts/{first['id']}", "support")
    assert (found["status"], len(found["coverage_periods"])) == ("active", 1)
    assert (await shop.call("GET", f"/v1/contracts/{other['id']}", "support"))["status"] == "pending_payment"


async def test_two_contracts_given_one_reference_at_once_leave_it_to_the_first_and_refuse_the_second(
    shop: Shop, app: CoverlineApp
) -> None:
    """Two writers lock two contracts, and each finds the reference applied nowhere: nothing of
    the record orders them. The second's fact waits for the first's key, and fails on it once
    the first commits. Its caller is told the reference is another contract's (409), as one told
    after the first committed, not that the server failed; nothing of its write stays."""
    first, other = await shop.sell("test-monthly", pay=False), await shop.sell("test-monthly", pay=False)
    reference = f"{first['id']}-pi-raced"
    async with app.state.db.unit_of_work() as run:
        await services.record_payment(
            run, first["id"], reference=reference, paid_at=dt.datetime.now(dt.UTC), actor="t"
        )
        await run.release()  # the fact's key is taken, and not committed yet
        second = asyncio.create_task(
            shop.client.post(
                f"/v1/contracts/{other['id']}/lifecycle",
                json={"action": "payment", "reference": reference},
                headers=shop.keys.auth("admin"),
            )
        )
        await _until_a_writer_waits_for_a_lock(app, "the fact's")
    refused = await asyncio.wait_for(second, timeout=10)
    assert refused.status_code == 409, refused.text
    assert [error["field"] for error in refused.json()["errors"]] == ["reference"]
    assert (await shop.call("GET", f"/v1/contracts/{first['id']}", "support"))["status"] == "active"
    kept = await shop.call("GET", f"/v1/contracts/{other['id']}", "support")
    assert (kept["status"], kept["coverage_periods"]) == ("pending_payment", [])
    again = await shop.client.post(
        f"/v1/contracts/{other['id']}/lifecycle",
        json={"action": "payment", "reference": reference},
        headers=shop.keys.auth("admin"),
    )
    assert (again.status_code, again.json()["type"]) == (409, refused.json()["type"])


async def test_concurrent_sales_and_claims_on_one_product_never_deadlock(shop: Shop) -> None:
    """Each sale and claim holds its product by the foreign key (`FOR KEY SHARE`) before it
    locks the product for the snapshot rewrite: that lock must not conflict with the first."""
    for _ in range(5):
        customer = await shop.customer()
        product = await shop.product(customer["id"])
        tokens = [await shop.offer_token(product, code) for code in ("test-screen-guard", "test-monthly")]
        sales = await asyncio.gather(
            *(
                shop.client.post(
                    "/v1/contracts",
                    json={"offer_token": token, "customer_id": customer["id"], "product_id": product["id"]},
                    headers=shop.keys.auth("checkout"),
                )
                for token in tokens
            )
        )
        assert [r.status_code for r in sales] == [201, 201], [r.text for r in sales]
        for sale in sales:
            await shop.lifecycle(sale.json()["id"], "payment", f"pay-{sale.json()['id']}")
        claims = await asyncio.gather(
            *(
                shop.client.post(
                    "/v1/claims",
                    json={
                        "contract_id": sale.json()["id"],
                        "reference": f"ticket-{sale.json()['id']}",
                        "incident_kind": "mechanical_breakdown",
                        "incident_date": customer_today().isoformat(),
                        "amount": {"amount": 15000, "currency": "USD"},
                    },
                    headers=shop.keys.auth("support"),
                )
                for sale in sales
            )
        )
        assert [r.status_code for r in claims] == [201, 201], [r.text for r in claims]


async def test_units_of_work_that_wait_never_hold_up_checks(shop: Shop, app: CoverlineApp) -> None:
    """Every write connection taken by a transaction that waits (on Stripe, on a lock): checks
    and key lookups read from a pool of their own and still answer."""
    contract = await shop.sell("test-screen-guard")
    async with contextlib.AsyncExitStack() as held:
        for _ in range(app.state.db.budget.units):
            await held.enter_async_context(app.state.db.unit_of_work())
        answer = await asyncio.wait_for(shop.check(serial=contract["serial"]), timeout=10)
    assert [p["product_id"] for p in answer["products"]] == [contract["product_id"]]


async def test_a_unit_of_work_on_a_session_is_inside_its_transaction(shop: Shop, app: CoverlineApp) -> None:
    """SQLAlchemy's asyncpg adapter sends BEGIN lazily; `unit_of_work` sends it first, so a write
    through asyncpg is rolled back with the session's transaction."""
    entity = f"rolled-back-{secrets.token_hex(4)}"

    async with app.state.db.sessions() as session:
        await session.begin()
        run = await unit_of_work(session)
        assert isinstance(run, UnitOfWork)
        await audit.append(run, "contract", entity, "t", [("written", {})])
        assert run.connection.is_in_transaction()
        await session.rollback()
    async with app.state.db.sessions() as session:
        assert await session.scalar(select(AuditEventRow.id).where(AuditEventRow.entity_id == entity)) is None
