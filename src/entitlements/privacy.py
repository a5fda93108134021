"""What we hold about a person, exported whole, and erased.

Erasure tombstones what names the person — name, email, phone, external reference — and what
they wrote or sent of themselves: claims' descriptions (and the service orders' copies of them),
redemptions' notes (and their visits' copies), satisfaction comments, and evidence (its rows go,
so the sweep deletes the files). Contracts, claims, the ledger and
the audit keep their pseudonymous ids, so finance still reconciles; the product keeps its serial,
so the entitlement check still answers. The erasure is audited; a second one changes nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from entitlements import jobs
from entitlements.audit_names import Action as A
from entitlements.store import audit
from entitlements.store.contracts import get_customer
from entitlements.store.tables import (
    AuditEventRow,
    BenefitRedemptionRow,
    ClaimRow,
    ContractRow,
    CoveragePeriodRow,
    CustomerRow,
    EvidenceRow,
    ProductRow,
    SatisfactionRow,
    ServiceOrderRow,
)
from entitlements.store.unit_of_work import touch, unit_of_work

TOMBSTONE = "(erased)"


class CustomerExport(msgspec.Struct, frozen=True):
    """Every row about the person, as stored (the ledger and Stripe's copies: `billing`)."""

    customer: dict[str, Any]
    products: list[dict[str, Any]]
    contracts: list[dict[str, Any]]
    coverage_periods: list[dict[str, Any]]
    claims: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    service_orders: list[dict[str, Any]]
    redemptions: list[dict[str, Any]]
    satisfaction: list[dict[str, Any]]
    history: list[dict[str, Any]]


class Erasure(msgspec.Struct, frozen=True):
    customer_id: str
    erased_at: dt.datetime
    already: bool  # erased before: nothing changed now
    stripe_customer_id: str | None
    email: str | None  # what was erased, for the copies outside these tables (then forgotten)
    name: str


async def _of(session: AsyncSession, table: Any, *where: Any) -> list[dict[str, Any]]:
    """The rows, every column as stored (deferred ones too)."""
    found = await session.execute(select(*table.__table__.columns).where(*where))
    return [dict(row) for row in found.mappings()]


async def export_customer(session: AsyncSession, customer_id: str) -> CustomerExport:
    customer = await get_customer(session, customer_id)
    products = select(ProductRow.id).where(ProductRow.customer_id == customer.id)
    contracts = select(ContractRow.id).where(ContractRow.customer_id == customer.id)
    claims = select(ClaimRow.id).where(ClaimRow.contract_id.in_(contracts))
    redemptions = select(BenefitRedemptionRow.id).where(BenefitRedemptionRow.contract_id.in_(contracts))
    subjects = [customer.id, *await session.scalars(products), *await session.scalars(contracts)]
    subjects += [*await session.scalars(claims), *await session.scalars(redemptions)]
    history = await _of(session, AuditEventRow, AuditEventRow.entity_id.in_(subjects))
    return CustomerExport(
        customer=(await _of(session, CustomerRow, CustomerRow.id == customer.id))[0],
        products=await _of(session, ProductRow, ProductRow.customer_id == customer.id),
        contracts=await _of(session, ContractRow, ContractRow.customer_id == customer.id),
        coverage_periods=await _of(session, CoveragePeriodRow, CoveragePeriodRow.contract_id.in_(contracts)),
        claims=await _of(session, ClaimRow, ClaimRow.contract_id.in_(contracts)),
        evidence=await _of(session, EvidenceRow, EvidenceRow.claim_id.in_(claims)),
        service_orders=await _of(session, ServiceOrderRow, ServiceOrderRow.contract_id.in_(contracts)),
        redemptions=await _of(session, BenefitRedemptionRow, BenefitRedemptionRow.contract_id.in_(contracts)),
        satisfaction=await _of(session, SatisfactionRow, SatisfactionRow.customer_id == customer.id),
        history=[
            {**row, "changes": msgspec.json.decode(row["changes"])}
            for row in sorted(history, key=lambda row: row["id"])
        ],
    )


async def erase_customer(session: AsyncSession, customer_id: str, *, actor: str, now: dt.datetime) -> Erasure:
    customer = await get_customer(session, customer_id, lock=True)  # after any write to them in flight
    if customer.erased_at is not None:
        # The person stays a tombstone; what they wrote since on their contracts (a claim filed
        # after, its evidence) goes as it went the first time.
        await _scrub_writings(session, customer.id)
        return Erasure(customer.id, customer.erased_at, True, customer.stripe_customer_id, None, TOMBSTONE)
    erased = Erasure(customer.id, now, False, customer.stripe_customer_id, customer.email, customer.name)
    customer.name, customer.email, customer.phone, customer.external_ref = TOMBSTONE, None, None, None
    customer.marketing_consent = False
    customer.erased_at = customer.updated_at = now
    await _scrub_writings(session, customer.id)
    await audit.record(session, "customer", customer.id, A.ERASED, actor)
    if customer.stripe_customer_id is not None:  # Stripe's copy gets the tombstone, by a job
        (await unit_of_work(session)).enqueue(jobs.CUSTOMER_CHANGED, customer.id.encode())
    owned = await session.scalars(select(ProductRow.id).where(ProductRow.customer_id == customer.id))
    touch(session, *owned)  # the snapshots' masked contact goes too
    return erased


async def _scrub_writings(session: AsyncSession, customer_id: str) -> None:
    """What the person wrote or sent of themselves on their contracts: claims' descriptions (and
    the service orders' copies), redemptions' notes, satisfaction comments, and evidence."""
    contracts = select(ContractRow.id).where(ContractRow.customer_id == customer_id)
    claims = select(ClaimRow.id).where(ClaimRow.contract_id.in_(contracts))
    await session.execute(update(ClaimRow).where(ClaimRow.id.in_(claims)).values(description=None))
    await session.execute(
        update(ServiceOrderRow).where(ServiceOrderRow.contract_id.in_(contracts)).values(problem=None)
    )
    await session.execute(
        update(BenefitRedemptionRow).where(BenefitRedemptionRow.contract_id.in_(contracts)).values(note=None)
    )
    await session.execute(
        update(SatisfactionRow).where(SatisfactionRow.customer_id == customer_id).values(comment=None)
    )
    # The rows go; the evidence sweep deletes the files no row names.
    await session.execute(delete(EvidenceRow).where(EvidenceRow.claim_id.in_(claims)))
