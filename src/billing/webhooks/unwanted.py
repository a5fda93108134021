"""Payments that buy nothing — a second payment for a period already paid, a payment that arrives
for a contract abandoned unpaid — are refunded in full by a job, under an idempotency key of
their own, so each is refunded once however often the job runs."""

from __future__ import annotations

import msgspec

from billing.gateway import Gateway
from billing.ledger.rules import LedgerKind
from billing.ledger.service import record_once
from billing.webhooks.rules import Unwanted
from entitlements.audit_names import Action
from entitlements.money import Money
from entitlements.store import audit
from entitlements.store.base import utcnow
from entitlements.store.unit_of_work import Units

ACTOR = "coverline"


class UnwantedRefund(msgspec.Struct, frozen=True):
    """The job's payload (`payment.refund_unwanted`)."""

    contract_id: str
    payment_intent: str
    amount: int
    currency: str
    reason: Unwanted


async def refund_unwanted(units: Units, gateway: Gateway, job: UnwantedRefund) -> None:
    """Refund it through the gateway (no transaction open), then book the refund; the refund's
    own webhook books it under the same key, whichever comes first."""
    refund = await gateway.refund(
        payment_intent=job.payment_intent,
        amount=Money(job.amount, job.currency),
        contract_id=job.contract_id,
        key=f"{job.reason.value}:{job.payment_intent}",
    )
    async with units() as run:
        await record_once(
            run,
            f"refund:{refund.id}",
            LedgerKind.REFUND,
            -job.amount,
            job.currency,
            utcnow(),
            contract_id=job.contract_id,
            stripe_refund=refund.id,
            stripe_payment_intent=job.payment_intent,
        )
        refunded = {"payment_intent": job.payment_intent, "refund": refund.id, "reason": job.reason.value}
        await audit.append(run, "contract", job.contract_id, ACTOR, [(Action.REFUNDED, refunded)])
