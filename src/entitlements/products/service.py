"""Products: what a customer bought, known by serial or IMEI, with its manufacturer's warranty."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from entitlements.audit_names import Action as A
from entitlements.coverage import EARLIEST_DAY
from entitlements.errors import Conflict, InvalidInput
from entitlements.fields import REF_LENGTH, new_id
from entitlements.identifiers import clean_text, normalize_imei, normalize_serial
from entitlements.money import check_amount
from entitlements.products.schemas import ProductInput
from entitlements.store import audit
from entitlements.store.base import utcnow
from entitlements.store.contracts import get_product, live_customer
from entitlements.store.tables import ProductRow
from entitlements.store.unit_of_work import touch


async def product(session: AsyncSession, product_id: str) -> ProductRow:
    """One product (a problem naming `product_id` when there is none)."""
    return await get_product(session, product_id)


async def register_product(session: AsyncSession, data: ProductInput, actor: str) -> ProductRow:
    await live_customer(session, data.customer_id)
    if not (data.serial or data.imei):
        raise InvalidInput("a product needs a serial or an IMEI", field="serial")
    check_amount(data.price, "price.amount")
    latest = utcnow().date() + dt.timedelta(days=1)  # a day's grace for time zones ahead of UTC
    if not EARLIEST_DAY <= data.purchase_date <= latest:
        raise InvalidInput(f"a purchase date is from {EARLIEST_DAY} to {latest}", field="purchase_date")
    serial = normalize_serial(data.serial) if data.serial else None
    imei = normalize_imei(data.imei) if data.imei else None
    for field, value in (("serial", serial), ("imei", imei)):
        if value is not None:
            column = ProductRow.serial if field == "serial" else ProductRow.imei
            if await session.scalar(select(ProductRow.id).where(column == value)) is not None:
                raise Conflict(f"a product with this {field} is registered already", field=field)
    row = ProductRow(
        id=new_id("prd"),
        customer_id=data.customer_id,
        serial=serial,
        imei=imei,
        sku=data.sku,
        category=data.category.value,
        price_amount=data.price.amount,
        currency=data.price.currency,
        purchase_date=data.purchase_date,
        warranty_months=data.warranty_months,
        warranty_labour_months=data.warranty_labour_months,
        order_ref=clean_text(data.order_ref, "order_ref", REF_LENGTH) if data.order_ref is not None else None,
        entitlement="",
        created_at=utcnow(),
    )
    session.add(row)
    await audit.record(session, "product", row.id, A.CREATED, actor, customer_id=row.customer_id)
    touch(session, row.id)
    return row
