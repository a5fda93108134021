"""Jobs: enqueued inside the unit of work's transaction, run by the worker after the commit,
retried with backoff, kept as failed after the last attempt."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from pgqueuer.adapters.drivers.asyncpg import AsyncpgDriver
from pgqueuer.adapters.persistence.queries import Queries
from pgqueuer.domain.types import QueueEntrypoint, QueueExecutionMode
from pgqueuer.ports.repository import EntrypointExecutionParameter
from sqlalchemy import select, text

from api.app import CoverlineApp, create_app
from api.idempotency import purge_expired
from api.settings import Settings
from api.tables import IdempotentRequestRow
from api.worker import _forget_job_log, build_worker
from billing.gateway import GatewayError
from billing.sandbox import SandboxGateway
from entitlements import jobs
from entitlements.store import outbox
from entitlements.store.tables import CustomerRow
from tests.api.shop import Shop, publish_test_plans
from tests.conftest import WEBHOOK_SECRETS, Keys, make_settings, serving
from tests.live import coverline

FAST = {
    "job_retry_seconds": 0.05,
    "job_retry_max_seconds": 0.2,
    "job_poll_seconds": 0.2,
    "job_lease_seconds": 2.0,
    "job_attempts": 3,
}


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[CoverlineApp]:
    yield create_app(make_settings(database_url, **FAST))


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _sql(database_url: str, sql: str, *args: Any) -> Any:
    connection = await asyncpg.connect(_plain(database_url))
    try:
        return await connection.fetchval(sql, *args)
    finally:
        await connection.close()


@pytest.fixture(autouse=True)
def no_jobs_left(database_url: str) -> Iterator[None]:
    asyncio.run(_sql(database_url, "DELETE FROM pgqueuer"))
    yield
    asyncio.run(_sql(database_url, "DELETE FROM pgqueuer"))


class FlakyGateway(SandboxGateway):
    """The sandbox, failing its first `failures` customer updates as a network would."""

    def __init__(self, failures: int) -> None:
        super().__init__(WEBHOOK_SECRETS[0])
        self.failures = failures
        self.calls = 0

    async def update_customer(
        self, stripe_customer: str, *, name: str, email: str | None, locales: list[str], key: str
    ) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise GatewayError("Stripe: APIConnectionError")
        await super().update_customer(stripe_customer, name=name, email=email, locales=locales, key=key)


async def queued(app: CoverlineApp, entrypoint: str = jobs.CUSTOMER_CHANGED) -> list[tuple[str, str, bytes]]:
    """The queue's jobs of one kind (a sale also queues its welcome letter)."""
    async with app.state.db.sessions() as session:
        rows = await session.execute(
            text("SELECT entrypoint, status::text, payload FROM pgqueuer WHERE entrypoint = :e ORDER BY id"),
            {"e": entrypoint},
        )
        return [(r[0], r[1], bytes(r[2] or b"")) for r in rows]


async def drain(app: CoverlineApp, settings: Settings, gateway: SandboxGateway) -> None:
    connection = await asyncpg.connect(_plain(str(app.state.db.url)))
    try:
        worker = build_worker(settings, connection, app.state.db, gateway)
        await worker.qm.run(
            dequeue_timeout=dt.timedelta(seconds=settings.job_poll_seconds),
            heartbeat_timeout=dt.timedelta(seconds=settings.job_lease_seconds),
            mode=QueueExecutionMode.drain,
        )
    finally:
        await connection.close()


async def customer_at_the_gateway(shop: Shop, app: CoverlineApp) -> dict[str, Any]:
    """A customer who bought through checkout, so the gateway has a copy of them."""
    sale = await shop.checkout("test-screen-guard")
    async with app.state.db.sessions() as session:
        row = await session.get(CustomerRow, sale["contract"]["customer_id"])
        assert row is not None and row.stripe_customer_id is not None
    # The first checkout pushes the customer once (a rename while it called the gateway would
    # otherwise be lost): run that push, so each test starts from an empty queue.
    assert await queued(app) == [(jobs.CUSTOMER_CHANGED, "queued", row.id.encode())]
    await drain(app, app.state.settings, SandboxGateway(WEBHOOK_SECRETS[0]))
    assert await queued(app) == []
    return {"id": row.id, "stripe": row.stripe_customer_id}


async def test_a_job_is_queued_with_its_unit_of_work_and_not_without_it(app: CoverlineApp) -> None:
    async with serving(app):

        async def failing_use_case() -> None:
            async with app.state.db.unit_of_work() as run:
                run.enqueue(jobs.CUSTOMER_CHANGED, b"cus_rolled_back")
                raise RuntimeError("the use case failed")

        with pytest.raises(RuntimeError):
            await failing_use_case()
        assert await queued(app) == []
        async with app.state.db.unit_of_work() as run:
            run.enqueue(jobs.CUSTOMER_CHANGED, b"cus_committed")
        assert await queued(app) == [(jobs.CUSTOMER_CHANGED, "queued", b"cus_committed")]


async def test_every_other_job_is_taken_before_an_events_deliveries(app: CoverlineApp) -> None:
    """A receiver that refuses every delivery keeps thousands of them due: letters, refunds and
    pushes to Stripe waited behind them for minutes (the queue took the oldest first)."""
    async with serving(app):
        async with app.state.db.unit_of_work() as run:
            for n in range(5):
                run.enqueue(outbox.DELIVER, f"delivery-{n}".encode())
        async with app.state.db.unit_of_work() as run:
            run.enqueue(jobs.CUSTOMER_CHANGED, b"cus_waiting")
        # The queue's own take, one job at a time, as a worker's would be.
        connection = await asyncpg.connect(_plain(str(app.state.db.url)))
        try:
            queries = Queries(AsyncpgDriver(connection))
            kinds = {
                QueueEntrypoint(name): EntrypointExecutionParameter(0)
                for name in (outbox.DELIVER, jobs.CUSTOMER_CHANGED)
            }
            taken = await queries.dequeue(1, kinds, uuid.uuid4(), None, dt.timedelta(seconds=30))
        finally:
            await connection.close()
        assert [job.entrypoint for job in taken] == [jobs.CUSTOMER_CHANGED]


async def test_the_job_log_is_forgotten_after_a_day(app: CoverlineApp) -> None:
    """PgQueuer keeps a row (and a failure's traceback) per status change for ever: 300 MB in 20
    minutes of deliveries to a receiver that refused them all."""
    insert = (
        "INSERT INTO pgqueuer_log (created, job_id, status, priority, entrypoint)"
        " VALUES (now() - :age * interval '1 hour', :job, 'exception', 0, :name)"
    )
    failed = (
        "INSERT INTO pgqueuer (priority, status, entrypoint) VALUES (0, 'failed', 'log-kept') RETURNING id"
    )
    async with serving(app):
        async with app.state.db.sessions() as session, session.begin():
            kept_job = (await session.execute(text(failed))).scalar_one()
            # A job kept as failed keeps its log: the traceback to read before queueing it again.
            for name, hours, job in (("old", 25, -1), ("today", 2, -1), ("failed-job", 25, kept_job)):
                await session.execute(text(insert), {"age": hours, "name": f"log-{name}", "job": job})
        await _forget_job_log(app.state.db, SandboxGateway(WEBHOOK_SECRETS[0]), b"", "test")
        async with app.state.db.sessions() as session, session.begin():
            rows = await session.execute(
                text("SELECT entrypoint FROM pgqueuer_log WHERE entrypoint LIKE 'log-%' ORDER BY entrypoint")
            )
            assert [r[0] for r in rows] == ["log-failed-job", "log-today"]
            await session.execute(text("DELETE FROM pgqueuer_log WHERE entrypoint LIKE 'log-%'"))
            await session.execute(text("DELETE FROM pgqueuer WHERE entrypoint = 'log-kept'"))


async def test_a_renamed_customer_reaches_the_gateway_through_a_job_retried_after_failures(
    app: CoverlineApp, client: httpx.AsyncClient, keys: Keys
) -> None:
    await publish_test_plans(app)
    shop = Shop(client, keys)
    customer = await customer_at_the_gateway(shop, app)
    await shop.call(
        "PATCH",
        f"/v1/customers/{customer['id']}",
        "support",
        json={"name": "Ana Reyes-Cruz", "locale": "fil"},
    )
    await shop.call(
        "PATCH", f"/v1/customers/{customer['id']}", "support", json={"phone": "+639171234567"}
    )  # nothing Stripe shows: nothing to push
    assert await queued(app) == [(jobs.CUSTOMER_CHANGED, "queued", customer["id"].encode())]

    gateway = FlakyGateway(failures=2)  # the third and last attempt goes through
    await drain(app, app.state.settings, gateway)
    assert gateway.calls == 3
    pushed = gateway.customers[customer["stripe"]]
    assert (pushed.name, pushed.preferred_locales) == ("Ana Reyes-Cruz", ["fil"])
    assert await queued(app) == []


async def test_a_job_that_fails_every_attempt_is_kept_as_failed(
    app: CoverlineApp, client: httpx.AsyncClient, keys: Keys
) -> None:
    await publish_test_plans(app)
    shop = Shop(client, keys)
    customer = await customer_at_the_gateway(shop, app)
    await shop.call("PATCH", f"/v1/customers/{customer['id']}", "support", json={"email": "new@example.com"})
    gateway = FlakyGateway(failures=99)
    await drain(app, app.state.settings, gateway)
    assert gateway.calls == FAST["job_attempts"]
    assert await queued(app) == [(jobs.CUSTOMER_CHANGED, "failed", customer["id"].encode())]


async def test_the_purge_forgets_stored_replies_past_their_time_to_live(app: CoverlineApp) -> None:
    now = dt.datetime.now(dt.UTC)
    async with serving(app):
        async with app.state.db.sessions() as session, session.begin():
            for key, age in (("old", dt.timedelta(hours=25)), ("fresh", dt.timedelta(hours=1))):
                session.add(
                    IdempotentRequestRow(
                        principal="key_purge", key=key, fingerprint="f", created_at=now - age
                    )
                )
        await purge_expired(app.state.db.unit_of_work, now)
        async with app.state.db.sessions() as session:
            kept = await session.scalars(
                select(IdempotentRequestRow.key).where(IdempotentRequestRow.principal == "key_purge")
            )
            assert list(kept) == ["fresh"]
        async with app.state.db.sessions() as session, session.begin():
            await session.execute(text("DELETE FROM idempotent_requests WHERE principal = 'key_purge'"))


def test_coverline_worker_runs_what_is_queued_and_stops_when_idle(database_url: str, tmp_path: Path) -> None:
    """The command itself, on the tests' database: a queued push for a customer the gateway does
    not know yet is done (nothing to push) and the worker stops."""
    env = os.environ | {
        "DATABASE_URL": database_url,
        "COVERLINE_JOB_POLL_SECONDS": "0.2",
        "COVERLINE_VAR_DIR": str(tmp_path),
    }

    asyncio.run(
        _sql(
            database_url,
            "INSERT INTO pgqueuer (priority, entrypoint, payload, status) VALUES (0, $1, $2, 'queued')",
            jobs.CUSTOMER_CHANGED,
            b"cus_nobody",
        )
    )
    coverline("worker", "--until-idle", env=env)

    assert asyncio.run(_sql(database_url, "SELECT count(*) FROM pgqueuer")) == 0
