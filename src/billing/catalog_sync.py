"""The catalog in Stripe: one product per plan, one price per plan version, currency and price
band, found again by `lookup_key`, so syncing twice creates nothing the second time."""

from __future__ import annotations

from typing import Protocol

import msgspec

from entitlements.catalog import Billing, Plan
from entitlements.contracts import billing_interval_months


class PriceSpec(msgspec.Struct, frozen=True):
    lookup_key: str
    product_id: str
    product_name: str
    currency: str
    unit_amount: int
    interval_months: int | None  # None: a one-off price (upfront plans)
    metadata: dict[str, str]


class CatalogGateway(Protocol):
    async def ensure_price(self, spec: PriceSpec) -> tuple[str, bool]:
        """(price id, created now?) for the spec's lookup key."""
        ...


def price_specs(plans: list[Plan]) -> list[PriceSpec]:
    specs = []
    for plan in plans:
        interval = None if plan.billing is Billing.UPFRONT else billing_interval_months(plan)
        for band in plan.prices:
            specs.append(
                PriceSpec(
                    lookup_key=f"coverline.{plan.code}.v{plan.version}.{band.currency}.{band.product_price_min}",
                    product_id=f"coverline_{plan.code}",
                    product_name=plan.text("en").name,
                    currency=band.currency,
                    unit_amount=band.price,
                    interval_months=interval,
                    metadata={
                        "plan_code": plan.code,
                        "plan_version": str(plan.version),
                        "product_price_min": str(band.product_price_min),
                        "product_price_max": ""
                        if band.product_price_max is None
                        else str(band.product_price_max),
                    },
                )
            )
    return specs


class SyncReport(msgspec.Struct, frozen=True):
    created: list[str]
    found: list[str]


async def sync_catalog(gateway: CatalogGateway, plans: list[Plan]) -> SyncReport:
    created: list[str] = []
    found: list[str] = []
    for spec in price_specs(plans):
        _, new = await gateway.ensure_price(spec)
        (created if new else found).append(spec.lookup_key)
    return SyncReport(created, found)
