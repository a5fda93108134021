"""Entitlement snapshots: everything a check needs about one product, in one row.

The normalized tables (contracts, coverage_periods, claims) are the record. Every use case that
changes them rewrites the product's snapshot in the same transaction, so a check is one indexed
read that is never staler than the last commit, from any worker or instance.
"""

from __future__ import annotations

import datetime as dt

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from entitlements.catalog import Plan
from entitlements.coverage import ClaimUse, ContractFacts, ContractStatus, Period
from entitlements.identifiers import mask_email, mask_phone
from entitlements.money import Money
from entitlements.store.contracts import approved_claims_of, periods_of
from entitlements.store.tables import ContractRow, CustomerRow, ProductRow


class ContractSnapshot(msgspec.Struct, frozen=True, array_like=True):
    contract_id: str
    status: ContractStatus
    plan_code: str
    plan_version: int
    currency: str
    sold_at: dt.datetime
    coverage_starts_at: dt.datetime
    ended_at: dt.datetime | None
    waiting_until: dt.datetime | None
    grace_until: dt.datetime | None
    periods: tuple[Period, ...]
    claims: tuple[ClaimUse, ...]

    def facts(self, plan: Plan, product_price: Money) -> ContractFacts:
        return ContractFacts(
            contract_id=self.contract_id,
            status=self.status,
            plan=plan,
            currency=self.currency,
            product_price=product_price,
            sold_at=self.sold_at,
            periods=self.periods,
            claims=self.claims,
            waiting_until=self.waiting_until,
            grace_until=self.grace_until,
        )


class ProductSnapshot(msgspec.Struct, frozen=True):
    product_id: str
    customer_id: str
    sku: str
    category: str
    price: Money
    serial: str | None
    imei: str | None
    contact: str | None  # masked: the only customer detail a check shows
    contracts: tuple[ContractSnapshot, ...]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ProductSnapshot)


def decode_snapshot(raw: str | bytes) -> ProductSnapshot:
    return _decoder.decode(raw)


def masked_contact(customer: CustomerRow) -> str | None:
    if customer.email:
        return mask_email(customer.email)
    return mask_phone(customer.phone) if customer.phone else None


async def build_snapshot(session: AsyncSession, product: ProductRow) -> ProductSnapshot:
    customer = await session.get(CustomerRow, product.customer_id)
    assert customer is not None
    contracts = list(
        await session.scalars(
            select(ContractRow)
            .where(ContractRow.product_id == product.id)
            .order_by(ContractRow.sold_at, ContractRow.id)
        )
    )
    ids = [c.id for c in contracts]
    periods = await periods_of(session, ids)
    claims = await approved_claims_of(session, ids)
    return ProductSnapshot(
        product_id=product.id,
        customer_id=product.customer_id,
        sku=product.sku,
        category=product.category,
        price=Money(product.price_amount, product.currency),
        serial=product.serial,
        imei=product.imei,
        contact=masked_contact(customer),
        contracts=tuple(
            ContractSnapshot(
                contract_id=c.id,
                status=ContractStatus(c.status),
                plan_code=c.plan_code,
                plan_version=c.plan_version,
                currency=c.currency,
                sold_at=c.sold_at,
                coverage_starts_at=c.coverage_starts_at,
                ended_at=c.ended_at,
                waiting_until=c.waiting_until,
                grace_until=c.grace_until,
                periods=tuple(periods.get(c.id, ())),
                claims=tuple(sorted(claims.get(c.id, ()), key=lambda u: u.incident_at)),
            )
            for c in contracts
        ),
    )


async def refresh_snapshots(session: AsyncSession, product_ids: list[str]) -> None:
    """Rewrite the snapshots of these products from the record (inside the caller's transaction)."""
    await session.flush()
    for product_id in dict.fromkeys(product_ids):
        product = await session.get(ProductRow, product_id)
        if product is None:
            continue
        snapshot = await build_snapshot(session, product)
        await session.execute(
            update(ProductRow)
            .where(ProductRow.id == product_id)
            .values(entitlement=_encoder.encode(snapshot).decode())
        )
