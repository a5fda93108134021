"""What claims cost, in the ledger: a repair's parts, labour and shipping when it is repaired, a
replacement at its cost, a reimbursement owed, a gift card's value, and what a visit an included
service needed cost (an installation, a maintenance visit) — each a `claim_cost` row (money
out, never revenue) carrying the claim, the contract and the servicer, booked once by its key in
the unit of work that made it so. And the reports finance reads: the costs, and the loss ratio per
plan, month and currency (claim cost against revenue earned)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.finance.rules import LossRatio, earned_by_month, loss_ratios, months_between
from billing.ledger.rules import CLAIM_COST
from billing.ledger.service import LedgerFilter, record_once, revenue_movements
from billing.tables import LedgerEntryRow
from entitlements.claims import service as claims
from entitlements.claims.rules import ClaimStatus, Fulfilment
from entitlements.claims.schemas import FulfilInput
from entitlements.money import Money
from entitlements.repairs import service as repairs
from entitlements.repairs.rules import Cost, OrderStatus
from entitlements.store.tables import ClaimRow, ContractRow, ServiceOrderRow
from entitlements.store.unit_of_work import unit_of_work

# What each way of fulfilling a claim costs, from the fulfilment's details.
_COST_OF = {Fulfilment.REPLACE: "cost", Fulfilment.REIMBURSE: "owed", Fulfilment.GIFT_CARD: "value"}
# The method of a cost line for a visit an included service needed.
VISIT = "visit"


async def _book(
    session: AsyncSession,
    owner: str,
    method: str,
    amount: int,
    currency: str,
    at: dt.datetime,
    *,
    contract_id: str,
    claim_id: str | None,
    servicer: str | None,
) -> None:
    """A cost of what the plan pays for, once by its key: a claim's fulfilment, or a visit an
    included service needed (`owner`: the claim, or the redemption)."""
    if amount > 0:
        await record_once(
            await unit_of_work(session),
            f"{CLAIM_COST}:{owner}:{method}",
            CLAIM_COST,
            -amount,
            currency,
            at,
            contract_id=contract_id,
            claim_id=claim_id,
            servicer_id=servicer,
        )


async def fulfil(
    session: AsyncSession,
    claim_id: str,
    data: FulfilInput,
    *,
    actor: str,
    agent: str | None,
    now: dt.datetime,
) -> ClaimRow:
    """`claims.fulfil_claim`, and the cost of a fulfilment that is done at once, booked with it."""
    claim = await claims.fulfil_claim(session, claim_id, data, actor=actor, agent=agent, now=now)
    field = _COST_OF.get(data.method)
    if claim.status == ClaimStatus.FULFILLED and field is not None and claim.fulfilment_details:
        details = msgspec.json.decode(claim.fulfilment_details)
        amount = int(details[field]["amount"])
        await _book(
            session,
            claim.id,
            data.method.value,
            amount,
            claim.currency,
            now,
            contract_id=claim.contract_id,
            claim_id=claim.id,
            servicer=None,
        )
    return claim


async def report_repair(
    session: AsyncSession,
    order_id: str,
    data: repairs.OrderReport,
    *,
    servicer_id: str,
    actor: str,
    now: dt.datetime,
) -> ServiceOrderRow:
    """`repairs.report`, and a repair's (or a visit's) cost booked when it is done."""
    order = await repairs.report(session, order_id, data, servicer_id=servicer_id, actor=actor, now=now)
    if order.status == OrderStatus.REPAIRED and order.cost:
        cost = msgspec.json.decode(order.cost, type=Cost)
        owner, method = (
            (order.claim_id, Fulfilment.REPAIR.value) if order.claim_id else (order.redemption_id, VISIT)
        )
        assert owner is not None  # an order is a claim's repair or a redemption's visit
        await _book(
            session,
            owner,
            method,
            cost.total,
            order.currency,
            now,
            contract_id=order.contract_id,
            claim_id=order.claim_id,
            servicer=order.servicer_id,
        )
    return order


class ClaimCostLine(msgspec.Struct, frozen=True):
    occurred_at: dt.datetime
    claim_id: str | None
    contract_id: str | None
    plan_code: str | None
    servicer_id: str | None
    method: str  # repair, replace, reimburse, gift_card; visit: an included service's
    cost: Money  # positive: what the claim cost


async def claim_costs(
    session: AsyncSession, since: dt.datetime, until: dt.datetime, currency: str | None
) -> list[ClaimCostLine]:
    query = (
        select(LedgerEntryRow, ContractRow.plan_code)
        .outerjoin(ContractRow, ContractRow.id == LedgerEntryRow.contract_id)
        .where(
            LedgerEntryRow.kind == CLAIM_COST,
            LedgerEntryRow.occurred_at >= since,
            LedgerEntryRow.occurred_at < until,
        )
        .order_by(LedgerEntryRow.occurred_at, LedgerEntryRow.id)
    )
    if currency is not None:
        query = query.where(LedgerEntryRow.currency == currency)
    return [
        ClaimCostLine(
            row.occurred_at,
            row.claim_id,
            row.contract_id,
            plan,
            row.servicer_id,
            row.entry_key.rsplit(":", 1)[-1],  # claim_cost:<claim>:<method>
            Money(-row.amount, row.currency),
        )
        for row, plan in (await session.execute(query)).all()
    ]


async def loss_ratio_report(session: AsyncSession, since: dt.datetime, until: dt.datetime) -> list[LossRatio]:
    """Per plan, calendar month (UTC) and currency meeting [since, until): revenue earned in the
    month, what claims cost in it, and their ratio."""
    months = months_between(since, until)
    if not months:
        return []
    end = months[-1][1]
    moves = await revenue_movements(session, LedgerFilter(until=end))
    named = sorted({m.contract_id for m in moves if m.contract_id is not None})
    plans: dict[str, str] = {}
    for start in range(0, len(named), 10_000):  # the plan of each contract the ledger names
        chunk = named[start : start + 10_000]
        query = select(ContractRow.id, ContractRow.plan_code).where(ContractRow.id.in_(chunk))
        plans.update((contract, plan) for contract, plan in (await session.execute(query)).all())
    earned: dict[tuple[dt.date, str, str], int] = defaultdict(int)
    for (month, contract, currency), amount in earned_by_month(moves, months).items():
        if contract is not None:
            earned[(month.date(), plans.get(contract, "-"), currency)] += amount
    costs: dict[tuple[dt.date, str, str], int] = defaultdict(int)
    for line in await claim_costs(session, months[0][0], end, None):
        first_day = line.occurred_at.date().replace(day=1)
        costs[(first_day, line.plan_code or "-", line.cost.currency)] += line.cost.amount
    return loss_ratios(dict(earned), dict(costs))
