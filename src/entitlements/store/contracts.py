"""Queries for customers, products, contracts, periods and claims."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from entitlements.benefits.rules import RedemptionStatus
from entitlements.catalog import BenefitKind, CoverageKind, Plan
from entitlements.claims.rules import COUNTED
from entitlements.contracts.rules import warranty_end
from entitlements.contracts.store import LifecycleRecord
from entitlements.coverage import (
    BenefitUse,
    ClaimUse,
    ContractFacts,
    ContractStatus,
    Period,
    incident_instant,
)
from entitlements.errors import Conflict, NotFound
from entitlements.money import Money
from entitlements.store.base import found
from entitlements.store.plans import known_plan_version, plan_version
from entitlements.store.tables import (
    BenefitRedemptionRow,
    ClaimRow,
    ContractRow,
    CoveragePeriodRow,
    CustomerRow,
    ProductRow,
)
from entitlements.store.unit_of_work import unit_of_work
from entitlements.zones import UTC


async def lock_contract(session: AsyncSession, contract_id: str) -> ContractRow:
    """Take the contract for writing (`LifecycleRecord.lock`: the one way a contract is locked,
    so concurrent writers queue instead of racing), and hand back its row as it is now."""
    if await LifecycleRecord(await unit_of_work(session)).lock(contract_id) is None:
        raise NotFound(f"no contract {contract_id}", field="contract_id")
    row = await session.get(ContractRow, contract_id, populate_existing=True)
    assert row is not None  # locked, so still there
    return row


async def get_customer(session: AsyncSession, customer_id: str, *, lock: Any = None) -> CustomerRow:
    return await found(session, CustomerRow, customer_id, "customer", "customer_id", lock=lock)


async def live_customer(session: AsyncSession, customer_id: str) -> CustomerRow:
    """A customer to write to or give something to. An erased one is a tombstone: nothing about
    them is recorded again (their name, a product, a contract), so an erasure stays one. Read
    `FOR NO KEY UPDATE`: an erasure (`FOR UPDATE`) waits for the write in flight, or the write
    for the erasure; writers of one customer take turns (each takes the lock first, so none
    waits on another's), and rows that only name the customer are not held up."""
    customer = await get_customer(session, customer_id, lock={"key_share": True})
    if customer.erased_at is not None:
        raise Conflict("this customer was erased: nothing more is recorded about them", field="customer_id")
    return customer


async def get_product(session: AsyncSession, product_id: str) -> ProductRow:
    return await found(session, ProductRow, product_id, "product", "product_id")


async def get_contract(session: AsyncSession, contract_id: str) -> ContractRow:
    return await found(session, ContractRow, contract_id, "contract", "contract_id")


async def periods_of(session: AsyncSession, contract_ids: Iterable[str]) -> dict[str, list[Period]]:
    ids = list(contract_ids)
    found: dict[str, list[Period]] = defaultdict(list)
    if ids:
        rows = await session.execute(
            select(CoveragePeriodRow.contract_id, CoveragePeriodRow.starts_at, CoveragePeriodRow.ends_at)
            .where(CoveragePeriodRow.contract_id.in_(ids))
            .order_by(CoveragePeriodRow.starts_at)
        )
        for contract_id, start, end in rows:
            found[contract_id].append(Period(start, end))
    return found


async def approved_claims_of(
    session: AsyncSession, contract_ids: Iterable[str], zones: dict[str, str]
) -> dict[str, list[ClaimUse]]:
    """Each contract's approved claims, dated by the day in its customer's zone (`zones`)."""
    ids = list(contract_ids)
    found: dict[str, list[ClaimUse]] = defaultdict(list)
    if ids:
        rows = await session.execute(
            select(
                ClaimRow.contract_id, ClaimRow.incident_kind, ClaimRow.incident_date, ClaimRow.covered_amount
            ).where(ClaimRow.contract_id.in_(ids), ClaimRow.status.in_(COUNTED))
        )
        for contract_id, kind, day, amount in rows:
            at = incident_instant(day, zones.get(contract_id, UTC))
            found[contract_id].append(ClaimUse(CoverageKind(kind), at, amount))
    return found


async def redemptions_of(session: AsyncSession, contract_ids: Iterable[str]) -> dict[str, list[BenefitUse]]:
    """Each contract's redemptions of included services that count (not voided)."""
    ids = list(contract_ids)
    found: dict[str, list[BenefitUse]] = defaultdict(list)
    if ids:
        rows = await session.execute(
            select(
                BenefitRedemptionRow.contract_id, BenefitRedemptionRow.kind, BenefitRedemptionRow.redeemed_at
            ).where(
                BenefitRedemptionRow.contract_id.in_(ids),
                BenefitRedemptionRow.status == RedemptionStatus.REDEEMED.value,
            )
        )
        for contract_id, kind, at in rows:
            found[contract_id].append(BenefitUse(BenefitKind(kind), at))
    return found


async def plan_of(session: AsyncSession, contract: ContractRow) -> Plan:
    plan = known_plan_version(contract.plan_code, contract.plan_version) or await plan_version(
        await unit_of_work(session), contract.plan_code, contract.plan_version
    )
    if plan is None:  # published versions are never deleted
        raise RuntimeError(f"contract {contract.id} pins a missing plan version")
    return plan


async def facts_for(
    session: AsyncSession, contracts: list[ContractRow], products: dict[str, ProductRow]
) -> dict[str, ContractFacts]:
    """Everything the entitlement decision needs, for many contracts in five queries."""
    periods = await periods_of(session, (c.id for c in contracts))
    owners = {c.customer_id for c in contracts}
    customer_zones = dict(
        (
            await session.execute(
                select(CustomerRow.id, CustomerRow.time_zone).where(CustomerRow.id.in_(owners))
            )
        ).all()
    )
    zones = {c.id: customer_zones.get(c.customer_id) or UTC for c in contracts}
    claims = await approved_claims_of(session, (c.id for c in contracts), zones)
    redemptions = await redemptions_of(session, (c.id for c in contracts))
    facts: dict[str, ContractFacts] = {}
    for contract in contracts:
        product = products[contract.product_id]
        facts[contract.id] = ContractFacts(
            contract_id=contract.id,
            status=ContractStatus(contract.status),
            plan=await plan_of(session, contract),
            currency=contract.currency,
            product_price=Money(product.price_amount, product.currency),
            sold_at=contract.sold_at,
            periods=tuple(periods.get(contract.id, ())),
            claims=tuple(claims.get(contract.id, ())),
            waiting_until=contract.waiting_until,
            grace_until=contract.grace_until,
            time_zone=zones[contract.id],
            warranty_until=warranty_end(product.purchase_date, product.warranty_months),
            redemptions=tuple(sorted(redemptions.get(contract.id, ()), key=lambda r: r.at)),
        )
    return facts
