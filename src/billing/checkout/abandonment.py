"""Checkouts that were never paid: when its offer expires, a pending contract is abandoned, and
the Stripe objects its attempts made are let go by a job (a PaymentIntent cancelled, an
incomplete subscription cancelled, a Checkout Session expired). A payment that still arrives
is a late payment, refunded (see `billing.webhooks`)."""

from __future__ import annotations

import datetime as dt

import msgspec
import structlog
from sqlalchemy import Table, bindparam, select

from billing.gateway import Gateway
from billing.tables import PaymentAttemptRow
from entitlements import jobs
from entitlements.contracts import service as services
from entitlements.coverage import ContractStatus
from entitlements.store.tables import ContractRow
from entitlements.store.unit_of_work import Units

ACTOR = "coverline"
BATCH = 200
log = structlog.get_logger("billing.abandonment")
contracts: Table = ContractRow.__table__  # type: ignore[assignment]
attempts: Table = PaymentAttemptRow.__table__  # type: ignore[assignment]

_EXPIRED = (
    select(contracts.c.id, contracts.c.offer_expires_at)
    .where(
        contracts.c.status == ContractStatus.PENDING_PAYMENT.value,
        contracts.c.offer_expires_at < bindparam("now"),
    )
    .order_by(contracts.c.offer_expires_at)
    .limit(BATCH)
    .with_for_update(skip_locked=True)
)
_OBJECTS = select(attempts.c.stripe_object).where(
    attempts.c.contract_id == bindparam("contract_id"), attempts.c.stripe_object.is_not(None)
)


class Release(msgspec.Struct, frozen=True):
    """The `checkout.release` job's payload."""

    contract_id: str
    stripe_objects: list[str]


async def abandon_expired(units: Units, now: dt.datetime) -> int:
    """Abandon the pending contracts whose offer has expired (a scheduled job), a batch at a time,
    each with a job to let its Stripe objects go; how many."""
    abandoned = 0
    while True:
        async with units() as run:
            expired = await run.rows(_EXPIRED, now=now)
            for contract_id, expired_at in expired:
                await services.end_contract(
                    run,
                    contract_id,
                    target=ContractStatus.ABANDONED,
                    reference=f"{contract_id}:offer-expired",
                    at=expired_at,
                    actor=ACTOR,
                )
                objects = [row[0] for row in await run.rows(_OBJECTS, contract_id=contract_id)]
                if objects:
                    run.enqueue(jobs.RELEASE_CHECKOUT, msgspec.json.encode(Release(contract_id, objects)))
        abandoned += len(expired)
        if len(expired) < BATCH:
            return abandoned


async def release_checkout(gateway: Gateway, release: Release) -> None:
    for stripe_object in release.stripe_objects:
        status = await gateway.release_payment(stripe_object, key=f"abandon:{stripe_object}")
        log.info(
            "abandoned checkout released",
            contract_id=release.contract_id,
            object=stripe_object,
            status=status,
        )
