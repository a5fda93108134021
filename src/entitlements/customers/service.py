"""Customers: who holds products and contracts, how to reach them and in which language."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from entitlements import jobs
from entitlements.audit_names import Action as A
from entitlements.customers.schemas import CustomerInput, CustomerPatch
from entitlements.errors import Conflict, InvalidInput
from entitlements.fields import NAME_LENGTH, REF_LENGTH, new_id
from entitlements.identifiers import check_country, clean_text, normalize_email, normalize_phone
from entitlements.localization import normalize_locale
from entitlements.store import audit
from entitlements.store.base import utcnow
from entitlements.store.contracts import get_customer, live_customer
from entitlements.store.tables import CustomerRow, ProductRow
from entitlements.store.unit_of_work import touch, unit_of_work
from entitlements.zones import customer_zone


def _locale(raw: str) -> str:
    locale = normalize_locale(raw)
    if locale is None:
        raise InvalidInput("locale must be one of en, fil, hi, sv, ar, vi", field="locale")
    return locale


async def customer(session: AsyncSession, customer_id: str) -> CustomerRow:
    """One customer (a problem naming `customer_id` when there is none)."""
    return await get_customer(session, customer_id)


async def create_customer(session: AsyncSession, data: CustomerInput, actor: str) -> CustomerRow:
    external_ref = (
        clean_text(data.external_ref, "external_ref", REF_LENGTH) if data.external_ref is not None else None
    )
    if external_ref is not None:
        existing = await session.scalar(select(CustomerRow).where(CustomerRow.external_ref == external_ref))
        if existing is not None:
            raise Conflict(
                f"customer {existing.id} already has external_ref {external_ref}", field="external_ref"
            )
    now = utcnow()
    row = CustomerRow(
        id=new_id("cus"),
        external_ref=external_ref,
        name=clean_text(data.name, "name", NAME_LENGTH),
        email=normalize_email(data.email) if data.email else None,
        phone=normalize_phone(data.phone, data.country) if data.phone else None,
        locale=_locale(data.locale),
        country=check_country(data.country),
        time_zone=customer_zone(data.country, data.time_zone),
        marketing_consent=data.marketing_consent,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await audit.record(session, "customer", row.id, A.CREATED, actor)
    return row


async def update_customer(
    session: AsyncSession, customer_id: str, patch: CustomerPatch, actor: str
) -> CustomerRow:
    row = await live_customer(session, customer_id)
    for field in ("email", "phone", "locale", "country", "time_zone"):
        if getattr(patch, field) == "":  # it was taken for "no change": say which was meant
            raise InvalidInput(f"{field} is empty: give a value, or leave the field out", field=field)
    changes: dict[str, object] = {}
    country = patch.country or row.country
    updates = {
        "name": clean_text(patch.name, "name", NAME_LENGTH) if patch.name is not None else None,
        "email": normalize_email(patch.email) if patch.email else None,
        "phone": normalize_phone(patch.phone, country) if patch.phone else None,
        "locale": _locale(patch.locale) if patch.locale else None,
        "country": check_country(patch.country) if patch.country else None,
        # A move to another country takes that country's clock unless a zone is given.
        "time_zone": customer_zone(country, patch.time_zone)
        if patch.time_zone is not None or (patch.country and patch.country != row.country)
        else None,
        "marketing_consent": patch.marketing_consent,
    }
    for field, value in updates.items():
        if value is not None and getattr(row, field) != value:
            changes[field] = [getattr(row, field), value]
            setattr(row, field, value)
    if changes:
        row.updated_at = utcnow()
        await audit.record(session, "customer", row.id, A.UPDATED, actor, **{k: "changed" for k in changes})
        if row.stripe_customer_id is not None and {"name", "email", "locale"} & changes.keys():
            (await unit_of_work(session)).enqueue(jobs.CUSTOMER_CHANGED, row.id.encode())
    if {"email", "phone", "time_zone", "locale"} & changes.keys():  # in the snapshots too
        owned = await session.scalars(select(ProductRow.id).where(ProductRow.customer_id == row.id))
        touch(session, *owned)
    return row


async def find_customers(
    session: AsyncSession,
    *,
    external_ref: str | None,
    email: str | None,
    phone: str | None,
    name: str | None = None,
) -> list[CustomerRow]:
    """Customers by exact external ref, email or phone (normalized), or whose name contains
    `name` in any case."""
    query = select(CustomerRow)
    if external_ref:
        query = query.where(CustomerRow.external_ref == clean_text(external_ref, "external_ref", REF_LENGTH))
    if email:
        query = query.where(CustomerRow.email == normalize_email(email))
    if phone:
        query = query.where(CustomerRow.phone == normalize_phone(phone))
    if name:
        pattern = clean_text(name, "name", 200).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(CustomerRow.name.ilike(f"%{pattern}%", escape="\\"))
    if not (external_ref or email or phone or name):
        raise InvalidInput("look customers up by external_ref, email or phone", field="query")
    return list(await session.scalars(query.order_by(CustomerRow.created_at).limit(100)))
