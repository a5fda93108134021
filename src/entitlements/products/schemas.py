"""What the products use cases take in: request bodies, decoded and bounded by msgspec."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from entitlements.catalog import ProductCategory
from entitlements.fields import Ref
from entitlements.money import Money


class ProductInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    customer_id: Ref
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    category: ProductCategory
    price: Money
    purchase_date: dt.date
    serial: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    imei: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    warranty_months: Annotated[int, msgspec.Meta(ge=0, le=120)] = 12  # the manufacturer's, on parts
    order_ref: Ref | None = None
    # The manufacturer's warranty on labour, when it differs from parts (none: the same).
    warranty_labour_months: Annotated[int, msgspec.Meta(ge=0, le=120)] | None = None
