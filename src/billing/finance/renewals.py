"""The renewals report: per month, currency and plan, what fell due and what became of it."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.ledger.rules import LedgerKind
from billing.tables import LedgerEntryRow
from entitlements.contracts.rules import ENDINGS, PAYMENT, ending_rank
from entitlements.coverage import ContractStatus
from entitlements.store.tables import ContractEventRow, ContractRow


class RenewalLine(msgspec.Struct, frozen=True):
    month: str  # YYYY-MM, UTC
    currency: str
    plan_code: str
    due: int  # renewals that fell due: renewed or failed
    renewed: int
    renewed_amount: int
    failed: int  # failed in the month
    failed_amount: int
    recovered: int  # of those, paid since
    in_grace: int  # of those, neither paid nor ended yet
    lapsed: int
    lapsed_amount: int  # the price per period of the contracts that lapsed
    cancelled: int
    cancelled_amount: int


async def renewals_report(session: AsyncSession, since: dt.datetime, until: dt.datetime) -> list[RenewalLine]:
    renewals = {
        row.stripe_invoice: row
        for row in await session.scalars(
            select(LedgerEntryRow).where(LedgerEntryRow.kind == LedgerKind.RENEWAL)
        )
        if row.stripe_invoice
    }
    events = list(
        await session.execute(
            select(ContractEventRow, ContractRow.plan_code, ContractRow.currency, ContractRow.price_amount)
            .join(ContractRow, ContractRow.id == ContractEventRow.contract_id)
            .where(ContractRow.stripe_subscription_id.is_not(None))  # renewing: an upfront term does not
        )
    )
    paid = {event.reference for event, *_ in events if event.kind == PAYMENT}
    # A contract ends once, by the ending that won (`settle`): a cancel is also told by Stripe's
    # `customer.subscription.deleted` that follows it, a second fact of the same ending.
    endings: dict[str, ContractEventRow] = {}
    for event, *_ in events:
        if event.kind in ENDINGS and (
            (won := endings.get(event.contract_id)) is None or _first(event) < _first(won)
        ):
            endings[event.contract_id] = event
    ended = set(endings)
    lines: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for event, plan_code, currency, price in events:
        if not (since <= event.applied_at < until):
            continue
        counts = lines[(event.applied_at.strftime("%Y-%m"), currency, plan_code)]
        if event.kind == PAYMENT and event.reference in renewals:
            counts["renewed"] += 1
            counts["due"] += 1
            counts["renewed_amount"] += renewals[event.reference].amount
        elif event.kind == ContractStatus.PAST_DUE:
            invoice = event.reference  # the failed invoice's, which its payment clears
            counts["failed"] += 1
            counts["failed_amount"] += price
            counts["due"] += invoice not in paid  # a recovered one is counted once, as renewed
            if invoice in paid:
                counts["recovered"] += 1
            elif event.contract_id not in ended:
                counts["in_grace"] += 1
        elif endings.get(event.contract_id) is not event:
            continue  # another fact of its ending, or no ending
        elif event.kind == ContractStatus.LAPSED:
            counts["lapsed"] += 1
            counts["lapsed_amount"] += price
        elif event.kind == ContractStatus.CANCELLED:
            counts["cancelled"] += 1
            counts["cancelled_amount"] += price
    return [
        RenewalLine(month, currency, plan, **{field: counts[field] for field in _COUNTS})
        for (month, currency, plan), counts in sorted(lines.items())
        if any(counts.values())  # a month with only first sales has no renewals to report
    ]


def _first(event: ContractEventRow) -> tuple[int, dt.datetime, str]:
    return ending_rank(event.kind, event.applied_at, event.reference)


_COUNTS = tuple(f for f in RenewalLine.__struct_fields__ if f not in ("month", "currency", "plan_code"))
