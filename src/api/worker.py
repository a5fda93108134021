"""`coverline worker`: runs the jobs that units of work enqueue, after they commit.

PgQueuer on asyncpg: a unit of work enqueues on its own connection, inside its transaction
(`UnitOfWork.enqueue`), so a rollback leaves no job. The worker listens for new jobs on a
connection of its own, runs each with the app's database pools and gateway, and retries a job
that raised with exponential backoff (`COVERLINE_JOB_*` settings); a job that fails every attempt
is kept with status `failed`, to be looked at and queued again. A worker that stops without
finishing a job stops renewing its lease, and another worker takes the job over.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
from collections.abc import Awaitable, Callable

import asyncpg
import msgspec
import structlog
from pgqueuer import PgQueuer
from pgqueuer.adapters.drivers.asyncpg import AsyncpgDriver
from pgqueuer.core.executors import DatabaseRetryEntrypointExecutor, EntrypointExecutorParameters
from pgqueuer.domain.models import Job, Schedule
from pgqueuer.domain.types import QueueExecutionMode

from api.app import make_gateway
from api.database import ConnectionBudget, Database
from api.deliveries import close_sessions, deliver
from api.idempotency import purge_expired
from api.mail import send_for_event
from api.settings import Settings
from api.storage import evidence_store
from billing.cancellation.service import StopSubscription, stop_subscription
from billing.checkout.abandonment import Release, abandon_expired, release_checkout
from billing.customers import push_customer
from billing.gateway import Gateway
from billing.webhooks.unwanted import UnwantedRefund, refund_unwanted
from entitlements import jobs, outreach
from entitlements.claims import evidence
from entitlements.store import outbox
from entitlements.store.base import utcnow
from entitlements.store.outbox import Delivery

log = structlog.get_logger("worker")

# (database, gateway, payload, the job's own name for idempotency keys)
JobHandler = Callable[[Database, Gateway, bytes, str], Awaitable[None]]


async def _customer_changed(db: Database, gateway: Gateway, payload: bytes, job: str) -> None:
    await push_customer(db.unit_of_work, gateway, payload.decode(), job)


async def _stop_subscription(_db: Database, gateway: Gateway, payload: bytes, _job: str) -> None:
    stop = msgspec.json.decode(payload, type=StopSubscription)
    await stop_subscription(gateway, stop.contract_id, stop.subscription)


async def _refund_unwanted(db: Database, gateway: Gateway, payload: bytes, _job: str) -> None:
    await refund_unwanted(db.unit_of_work, gateway, msgspec.json.decode(payload, type=UnwantedRefund))


async def _abandon(db: Database, _gateway: Gateway, _payload: bytes, _job: str) -> None:
    await abandon_expired(db.unit_of_work, utcnow())


async def _release(_db: Database, gateway: Gateway, payload: bytes, _job: str) -> None:
    await release_checkout(gateway, msgspec.json.decode(payload, type=Release))


def _send_email(settings: Settings) -> JobHandler:
    async def send_email(db: Database, _gateway: Gateway, payload: bytes, _job: str) -> None:
        await send_for_event(db, settings, payload.decode())

    return send_email


def _deliver(settings: Settings) -> JobHandler:
    async def deliver_event(db: Database, _gateway: Gateway, payload: bytes, _job: str) -> None:
        await deliver(db, settings, msgspec.json.decode(payload, type=Delivery))

    return deliver_event


async def _purge(db: Database, _gateway: Gateway, _payload: bytes, _job: str) -> None:
    await purge_expired(db.unit_of_work, utcnow())


async def _forget_rate_buckets(db: Database, _gateway: Gateway, _payload: bytes, _job: str) -> None:
    await db.forget_rate_buckets(IDLE_BUCKET)


async def _forget_job_log(db: Database, _gateway: Gateway, _payload: bytes, _job: str) -> None:
    log.info("job log forgotten", rows=await db.forget_job_log(JOB_LOG_KEPT))


def _outreach(settings: Settings) -> JobHandler:
    async def sweep_outreach(db: Database, _gateway: Gateway, _payload: bytes, _job: str) -> None:
        report = await outreach.sweep(
            db.unit_of_work,
            utcnow(),
            keyring=settings.offer_keys,
            lead_after=dt.timedelta(hours=settings.lead_after_hours),
            lead_url=settings.lead_url_template,
            getting_started_after=dt.timedelta(days=settings.getting_started_days),
        )
        log.info("outreach", **msgspec.structs.asdict(report))

    return sweep_outreach


# A rate-limit bucket is full again a minute after its last request; ten are kept for good measure.
IDLE_BUCKET = dt.timedelta(minutes=10)

JOBS: dict[str, JobHandler] = {
    jobs.CUSTOMER_CHANGED: _customer_changed,
    jobs.STOP_SUBSCRIPTION: _stop_subscription,
    jobs.REFUND_UNWANTED: _refund_unwanted,
    jobs.RELEASE_CHECKOUT: _release,
}
# Jobs a worker takes from the queue at once (PgQueuer's default is 10): each take is a query, and
# a backlog of deliveries drains faster in larger takes.
JOB_BATCH = 50
# How long the job queue's log is kept: enough to see what a job did today.
JOB_LOG_KEPT = dt.timedelta(days=1)
# Renewal reminders, term ends and leads: due by the day, looked for every quarter of an hour.
OUTREACH_CRON = "*/15 * * * *"
# (job, cron): run by whichever worker's scheduler takes it first.
SCHEDULES: tuple[tuple[str, str, JobHandler], ...] = (
    (jobs.PURGE_IDEMPOTENT_REPLIES, "17 * * * *", _purge),
    (jobs.ABANDON_CHECKOUTS, "* * * * *", _abandon),
    (jobs.FORGET_RATE_BUCKETS, "*/10 * * * *", _forget_rate_buckets),
    (jobs.FORGET_JOB_LOG, "*/10 * * * *", _forget_job_log),
)


def _sweep_evidence(settings: Settings) -> JobHandler:
    async def sweep_evidence(db: Database, _gateway: Gateway, _payload: bytes, _job: str) -> None:
        deleted = await evidence.sweep_orphans(db.sessions, evidence_store(settings), utcnow())
        log.info("evidence swept", orphans_deleted=deleted)

    return sweep_evidence


def schedules(settings: Settings) -> tuple[tuple[str, str, JobHandler], ...]:
    return (
        *SCHEDULES,
        (jobs.OUTREACH, OUTREACH_CRON, _outreach(settings)),
        (jobs.SWEEP_EVIDENCE, "41 * * * *", _sweep_evidence(settings)),
    )


def build_worker(
    settings: Settings, connection: asyncpg.Connection, db: Database, gateway: Gateway
) -> PgQueuer:
    worker = PgQueuer(AsyncpgDriver(connection))

    def retried(parameters: EntrypointExecutorParameters) -> DatabaseRetryEntrypointExecutor:
        return DatabaseRetryEntrypointExecutor(
            parameters=parameters,
            max_attempts=max(settings.job_attempts - 1, 0),  # PgQueuer counts the retries
            initial_delay=dt.timedelta(seconds=settings.job_retry_seconds),
            max_delay=dt.timedelta(seconds=settings.job_retry_max_seconds),
        )

    handlers = {**JOBS, outbox.DELIVER: _deliver(settings), jobs.SEND_EMAIL: _send_email(settings)}
    for name, handler in handlers.items():

        async def run(job: Job, name: str = name, handler: JobHandler = handler) -> None:
            log.info("job", job=name, job_id=job.id, attempt=job.attempts + 1)
            await handler(db, gateway, job.payload or b"", f"job-{job.id}")

        worker.entrypoint(name, executor_factory=retried, on_failure="hold")(run)
    for name, cron, handler in schedules(settings):

        async def scheduled(_schedule: Schedule, name: str = name, handler: JobHandler = handler) -> None:
            log.info("scheduled job", job=name)
            await handler(db, gateway, b"", f"schedule-{name}")

        worker.schedule(name, cron)(scheduled)
    return worker


async def run_worker(settings: Settings, *, until_idle: bool = False) -> None:
    """Run jobs until stopped (SIGINT, SIGTERM), or with `until_idle` until none is left."""
    # One of the process's connections is the queue's own (it listens for new jobs).
    budget = ConnectionBudget(settings.db_connections - 1)
    db = Database(settings.database_url, var_dir=settings.var_dir, budget=budget)
    await db.start()
    connection: asyncpg.Connection | None = None
    try:
        connection = await asyncpg.connect(db.driver_url)
        worker = build_worker(settings, connection, db, make_gateway(settings))
        poll = dt.timedelta(seconds=settings.job_poll_seconds)
        lease = dt.timedelta(seconds=settings.job_lease_seconds)
        if until_idle:  # the queue alone: the scheduler would wait for its next time
            await worker.qm.run(dequeue_timeout=poll, heartbeat_timeout=lease, mode=QueueExecutionMode.drain)
            return
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, worker.shutdown.set)
        log.info(
            "worker started",
            jobs=sorted(worker.qm.entrypoint_registry),
            schedules=[s[0] for s in schedules(settings)],
        )
        await worker.run(dequeue_timeout=poll, heartbeat_timeout=lease, batch_size=JOB_BATCH)
    finally:
        await close_sessions()
        if connection is not None:
            await asyncio.shield(connection.close())
        await db.dispose()
