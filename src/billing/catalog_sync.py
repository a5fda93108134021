"""The catalog in Stripe: one product per plan, one price per plan version, currency and price
band, found again by `lookup_key`, so syncing twice creates nothing the second time."""

from __future__ import annotations

from typing import Protocol

import msgspec

from entitlements.catalog import Billing, Plan, PriceBand
from entitlements.contracts.rules import billing_interval_months
from entitlements.money import Money


class PriceSpec(msgspec.Struct, frozen=True):
    lookup_key: str
    product_id: str
    product_name: str
    currency: str
    unit_amount: int
    interval_months: int | None  # None: a one-off price (upfront plans)
    metadata: dict[str, str]


class CatalogGateway(Protocol):
    async def ensure_price(self, spec: PriceSpec) -> tuple[str | None, bool]:
        """(price id, created now?) for the spec's lookup key; no id where it cannot be held."""
        ...


def price_spec(plan: Plan, band: PriceBand) -> PriceSpec:
    """The Stripe price of one plan version's price band, named by its lookup key."""
    return PriceSpec(
        lookup_key=f"coverline.{plan.code}.v{plan.version}.{band.currency}.{band.product_price_min}",
        product_id=f"coverline_{plan.code}",
        product_name=plan.text("en").name,
        currency=band.currency,
        unit_amount=band.price,
        interval_months=None if plan.billing is Billing.UPFRONT else billing_interval_months(plan),
        metadata={
            "plan_code": plan.code,
            "plan_version": str(plan.version),
            "product_price_min": str(band.product_price_min),
            "product_price_max": "" if band.product_price_max is None else str(band.product_price_max),
        },
    )


def price_specs(plans: list[Plan]) -> list[PriceSpec]:
    return [price_spec(plan, band) for plan in plans for band in plan.prices]


def contract_price(plan: Plan, product_price: Money) -> PriceSpec | None:
    """The price a contract for a product at `product_price` is sold at (the band it falls in)."""
    band = next((band for band in plan.prices if band.contains(product_price)), None)
    return None if band is None else price_spec(plan, band)


class SyncReport(msgspec.Struct, frozen=True):
    created: list[str]
    found: list[str]
    # One-off prices a server with Plans only cannot hold (upfront plans are charged by
    # PaymentIntent, so they need none there).
    skipped: list[str] = []


async def sync_catalog(gateway: CatalogGateway, plans: list[Plan]) -> SyncReport:
    created: list[str] = []
    found: list[str] = []
    skipped: list[str] = []
    for spec in price_specs(plans):
        price, new = await gateway.ensure_price(spec)
        (skipped if price is None else created if new else found).append(spec.lookup_key)
    return SyncReport(created, found, skipped)
