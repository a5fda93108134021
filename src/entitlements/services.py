"""Use cases. Each takes the request's unit of work (its session, or the unit itself; the caller
commits, and the snapshots of the products a use case touched are rewritten as it does) and the
actor (the API key id) that the audit log records."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from enum import StrEnum
from typing import Annotated, Any

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from entitlements import audit_names as A
from entitlements import jobs
from entitlements.catalog import CountryCode, Plan, ProductCategory
from entitlements.contracts import (
    ENDINGS,
    PAYMENT,
    TRANSITIONS,
    LifecycleEvent,
    check_transition,
    coverage_start,
    next_period,
    settle,
)
from entitlements.coverage import (
    ContractStatus,
    Period,
)
from entitlements.decisions import ContractDecision, PlanLoader, ProductEntitlement, decide_product, plans_for
from entitlements.errors import Conflict, InvalidInput, NotFound
from entitlements.identifiers import (
    check_country,
    clean_text,
    normalize_email,
    normalize_imei,
    normalize_phone,
    normalize_serial,
)
from entitlements.localization import normalize_locale
from entitlements.money import Money, check_amount
from entitlements.offers import OfferKeyring, verify_offer
from entitlements.store import audit
from entitlements.store.base import utcnow
from entitlements.store.contracts import (
    get_contract,
    get_customer,
    get_product,
    lock_contract,
    periods_of,
    plan_of,
)
from entitlements.store.leads import consume_lead
from entitlements.store.lifecycle import ContractState, LifecycleRecord, LockedContract
from entitlements.store.plans import plan_version
from entitlements.store.snapshots import (
    ProductSnapshot,
    SnapshotSource,
    decode_snapshot,
)
from entitlements.store.tables import (
    AuditEventRow,
    ContractRow,
    CustomerRow,
    ProductRow,
)
from entitlements.store.unit_of_work import UnitOfWork, commit, touch, unit_of_work
from entitlements.zones import customer_zone

__all__ = [
    "ContractDecision",
    "PlanLoader",
    "ProductEntitlement",
    "decide_product",
    "plans_for",
]  # their home: entitlements.decisions

NAME_LENGTH, REF_LENGTH, DESCRIPTION_LENGTH = 200, 128, 2000  # as the columns hold them
Text200 = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_LENGTH)]
Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=REF_LENGTH)]


EARLIEST_PURCHASE = dt.date(1990, 1, 1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def contract_id_for(offer_id: str) -> str:
    """An offer sells once, so the contract's id follows from it: a retried checkout names the
    same contract, and the payment calls keyed on it can never charge twice."""
    return "ctr_" + hashlib.sha256(offer_id.encode()).hexdigest()[:20]


# --- customers -----------------------------------------------------------------------------------


class CustomerInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Text200
    country: CountryCode
    external_ref: Ref | None = None
    email: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    phone: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    locale: Annotated[str, msgspec.Meta(max_length=35)] = "en"
    # IANA; may be left out where the country keeps one clock (PH, IN, SE, SA, VN, …).
    time_zone: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    marketing_consent: bool = False  # letters with offers (a lead); service letters go regardless


class CustomerPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Text200 | None = None
    email: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    phone: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    locale: Annotated[str, msgspec.Meta(max_length=35)] | None = None
    country: CountryCode | None = None
    time_zone: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    marketing_consent: bool | None = None


def _locale(raw: str) -> str:
    locale = normalize_locale(raw)
    if locale is None:
        raise InvalidInput("locale must be one of en, fil, hi, sv, ar, vi", field="locale")
    return locale


async def customer(session: AsyncSession, customer_id: str) -> CustomerRow:
    """One customer (a problem naming `customer_id` when there is none)."""
    return await get_customer(session, customer_id)


async def product(session: AsyncSession, product_id: str) -> ProductRow:
    """One product (a problem naming `product_id` when there is none)."""
    return await get_product(session, product_id)


async def contract(session: AsyncSession, contract_id: str) -> ContractRow:
    """One contract (a problem naming `contract_id` when there is none)."""
    return await get_contract(session, contract_id)


async def contract_periods(session: AsyncSession, contract_id: str) -> list[Period]:
    """The contract's coverage periods, earliest first."""
    return (await periods_of(session, [contract_id])).get(contract_id, [])


async def commit_now(session: AsyncSession) -> None:
    """End the request's unit of work before it returns (the touched products' snapshots
    rewritten and the events written first), so what follows sees it committed."""
    await commit(session)


async def contracts_held(session: AsyncSession, customer_id: str) -> list[ContractRow]:
    """The customer's contracts but those never bought (abandoned), oldest sale first."""
    found = await session.scalars(
        select(ContractRow)
        .where(ContractRow.customer_id == customer_id, ContractRow.status != ContractStatus.ABANDONED.value)
        .order_by(ContractRow.sold_at)
    )
    return list(found)


async def contract_plan(session: AsyncSession, row: ContractRow) -> Plan:
    """The plan version the contract was sold under."""
    return await plan_of(session, row)


async def agent_did(
    session: AsyncSession,
    entity: str,
    entity_id: str,
    key_id: str,
    agent: str | None,
    did: str,
    **changes: Any,
) -> None:
    """What an agent did through the console, audited with their name."""
    await audit.record(session, entity, entity_id, A.AGENT_ACTION, key_id, agent=agent, did=did, **changes)


async def history(session: AsyncSession, entity_ids: list[str]) -> list[AuditEventRow]:
    """Every audited change of these (contracts, claims, products…), oldest first."""
    return await audit.history(session, entity_ids)


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
    row = await get_customer(session, customer_id)
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
            await (await unit_of_work(session)).enqueue(jobs.CUSTOMER_CHANGED, row.id.encode())
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


# --- products ------------------------------------------------------------------------------------


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


async def register_product(session: AsyncSession, data: ProductInput, actor: str) -> ProductRow:
    await get_customer(session, data.customer_id)
    if not (data.serial or data.imei):
        raise InvalidInput("a product needs a serial or an IMEI", field="serial")
    check_amount(data.price, "price.amount")
    latest = utcnow().date() + dt.timedelta(days=1)  # a day's grace for time zones ahead of UTC
    if not EARLIEST_PURCHASE <= data.purchase_date <= latest:
        raise InvalidInput(f"a purchase date is from {EARLIEST_PURCHASE} to {latest}", field="purchase_date")
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


# --- contracts -----------------------------------------------------------------------------------


async def open_contract(
    session: AsyncSession,
    *,
    offer_token: str,
    customer_id: str,
    product_id: str,
    keyring: OfferKeyring,
    now: dt.datetime,
    actor: str,
) -> ContractRow:
    """A pending contract from a signed offer, for the product the offer was made for."""
    terms = verify_offer(offer_token, keyring, now)
    existing = await session.scalar(select(ContractRow).where(ContractRow.offer_id == terms.offer_id))
    if existing is not None:
        if (existing.customer_id, existing.product_id) == (customer_id, product_id):
            return existing  # the same sale, asked again
        raise Conflict("this offer has been used for another sale", field="offer_token")
    customer = await get_customer(session, customer_id)
    product = await get_product(session, product_id)
    if product.customer_id != customer.id:
        raise InvalidInput("the product belongs to another customer", field="product_id")
    offered = terms.product
    mismatches = [
        name
        for name, same in (
            ("category", offered.category.value == product.category),
            ("price", offered.price == Money(product.price_amount, product.currency)),
            ("purchase_date", offered.purchase_date == product.purchase_date),
            ("serial", offered.serial is None or normalize_serial(offered.serial) == product.serial),
        )
        if not same
    ]
    if mismatches:
        raise InvalidInput(
            f"the product does not match the offer ({', '.join(mismatches)})", field="offer_token"
        )
    plan = await plan_version(await unit_of_work(session), terms.plan_code, terms.plan_version)
    if plan is None:
        raise NotFound(f"no plan {terms.plan_code} v{terms.plan_version}", field="offer_token")
    row = ContractRow(
        id=contract_id_for(terms.offer_id),
        customer_id=customer.id,
        product_id=product.id,
        offer_id=terms.offer_id,
        plan_code=plan.code,
        plan_version=plan.version,
        price_amount=terms.price.amount,
        currency=terms.price.currency,
        billing=plan.billing.value,
        status=ContractStatus.PENDING_PAYMENT.value,
        sold_at=now,
        offer_expires_at=dt.datetime.fromtimestamp(terms.expires_at, dt.UTC),
        coverage_starts_at=coverage_start(plan, product.purchase_date, product.warranty_months, now),
        waiting_until=now + dt.timedelta(days=terms.waiting_period_days)
        if terms.waiting_period_days
        else None,
        revision=0,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("this offer has been used for another sale", field="offer_token") from None
    if terms.lead_id is not None:
        await consume_lead(await unit_of_work(session), terms.lead_id, product.id, row.id, now)
    await audit.record(
        session,
        "contract",
        row.id,
        A.OPENED,
        actor,
        plan=f"{plan.code} v{plan.version}",
        offer_id=terms.offer_id,
    )
    touch(session, product.id)
    created = {
        "contract_id": row.id,
        "product_id": product.id,
        "customer_id": customer.id,
        "plan_code": plan.code,
        "plan_version": plan.version,
        "status": row.status,
        "price": {"amount": row.price_amount, "currency": row.currency},
    }
    (await unit_of_work(session)).emit("contract.created", created, product_id=product.id, contract_id=row.id)
    return row


async def _first_time(
    record: LifecycleRecord, contract: ContractState, fact: LifecycleEvent, target: ContractStatus | None
) -> bool:
    """Record the fact unless it was applied before (then False: nothing more to do). With a
    `target`, the fact must be a transition the contract's status allows, unless it is a replay."""
    if target is not None and target not in TRANSITIONS[contract.status]:
        owner = await record.applied_to(fact)
        if owner is None:
            check_transition(contract.status, target)  # raises: not allowed now
    else:
        owner = await record.remember(contract.id, fact)
        if owner is None:
            return True
    if owner != contract.id:
        raise Conflict(f"reference {fact.reference} belongs to another contract", field="reference")
    return False


async def _locked(record: LifecycleRecord, contract: str | LockedContract) -> LockedContract:
    if isinstance(contract, LockedContract):
        return contract
    locked = await record.lock(contract)
    if locked is None:
        raise NotFound(f"no contract {contract}", field="contract_id")
    return locked


async def _settle(
    record: LifecycleRecord,
    contract: ContractState,
    facts: list[LifecycleEvent],
    *,
    reference: str,
    actor: str,
    bought: Period | None = None,
    audits: tuple[tuple[str, dict[str, Any]], ...] = (),
) -> Period | None:
    """Settle the status from every lifecycle fact applied so far (`contracts.settle`) and write
    it; a cancellation cuts the coverage periods at its instant, paid or not. Returns the period
    bought, as stored."""
    plan = await record.plan(contract)
    settled = settle(facts, plan.grace_period_days)
    entries = list(audits)
    if settled.status is not contract.status:
        change = {"status": [contract.status.value, settled.status.value], "reference": reference}
        entries.append((settled.status.value, change))
    return await record.write(
        contract, settled, bought=bought, reference=reference, audits=entries, actor=actor
    )


async def _apply(
    run: UnitOfWork,
    contract: str | LockedContract,
    fact: LifecycleEvent,
    target: ContractStatus | None,
    reference: str,
    actor: str,
) -> None:
    """Record a fact that buys nothing (a failed payment, an ending) and settle the status."""
    record = LifecycleRecord(run)
    locked = await _locked(record, contract)
    if await _first_time(record, locked, fact, target):
        facts, _ = await record.history(locked.id)
        await _settle(record, locked, facts, reference=reference, actor=actor)


class LifecycleAction(StrEnum):
    PAYMENT = "payment"
    PAST_DUE = "past_due"
    LAPSE = "lapse"
    CANCEL = "cancel"
    EXPIRE = "expire"
    ABANDON = "abandon"


_ENDINGS = {
    LifecycleAction.LAPSE: ContractStatus.LAPSED,
    LifecycleAction.CANCEL: ContractStatus.CANCELLED,
    LifecycleAction.EXPIRE: ContractStatus.EXPIRED,
    LifecycleAction.ABANDON: ContractStatus.ABANDONED,
}


async def apply_lifecycle(
    session: AsyncSession,
    contract_id: str,
    action: LifecycleAction,
    *,
    reference: str,
    at: dt.datetime,
    actor: str,
) -> ContractRow:
    """A lifecycle event, applied once per reference; the contract as it is after it."""
    run = await unit_of_work(session)
    if action is LifecycleAction.PAYMENT:
        await record_payment(run, contract_id, reference=reference, paid_at=at, actor=actor)
    elif action is LifecycleAction.PAST_DUE:
        await mark_past_due(run, contract_id, reference=reference, at=at, actor=actor)
    else:
        await end_contract(run, contract_id, target=_ENDINGS[action], reference=reference, at=at, actor=actor)
    return await get_contract(session, contract_id)


async def record_payment(
    run: UnitOfWork,
    contract: str | LockedContract,
    *,
    reference: str,
    paid_at: dt.datetime,
    actor: str,
    period: Period | None = None,
    checked: bool = True,
) -> Period | None:
    """A payment buys a coverage period: the one given (a subscription invoice's), else the next
    billing interval (the term upfront, a month, a year). Idempotent by `reference`: returns the
    period bought as stored (cut, on a contract cancelled before it), or None when the payment
    was recorded before.

    `checked=False` is for facts reported by the gateway, which arrive in any order: they are
    recorded whatever the status says now (a payment that reaches an ended contract still buys
    the period it paid for), and the status is settled from all of them.

    `contract` is its id, or the contract as the caller has locked it in this transaction."""
    record = LifecycleRecord(run)
    locked = await _locked(record, contract)
    fact = LifecycleEvent(reference, PAYMENT, paid_at)
    if not await _first_time(record, locked, fact, ContractStatus.ACTIVE if checked else None):
        return None
    facts, existing = await record.history(locked.id)
    if period is None:
        plan = await record.plan(locked)
        period = next_period(plan, existing, locked.coverage_starts_at, paid_at)
    paid = ("paid", {"reference": reference, "period": [period.start.isoformat(), period.end.isoformat()]})
    return await _settle(
        record, locked, facts, reference=reference, actor=actor, bought=period, audits=(paid,)
    )


async def mark_past_due(
    run: UnitOfWork,
    contract: str | LockedContract,
    *,
    reference: str,
    at: dt.datetime,
    actor: str,
    checked: bool = True,
) -> None:
    """A renewal failed: past due with a grace end, until a payment with the same reference."""
    fact = LifecycleEvent(reference, ContractStatus.PAST_DUE.value, at)
    await _apply(run, contract, fact, ContractStatus.PAST_DUE if checked else None, reference, actor)


async def end_contract(
    run: UnitOfWork,
    contract: str | LockedContract,
    *,
    target: ContractStatus,
    reference: str,
    at: dt.datetime,
    actor: str,
    checked: bool = True,
) -> None:
    """Lapse, cancel, expire or abandon. Cancelling cuts coverage at `at`; the paid past stays."""
    if target not in ENDINGS:
        raise InvalidInput(f"{target.value} does not end a contract", field="action")
    fact = LifecycleEvent(reference, target.value, at)
    await _apply(run, contract, fact, target if checked else None, reference, actor)


async def transfer_contract(
    session: AsyncSession, contract_id: str, *, customer_id: str, actor: str
) -> ContractRow:
    """The contract and its product move to a new owner; the history stays with the contract."""
    contract = await lock_contract(session, contract_id)
    new_owner = await get_customer(session, customer_id)
    if new_owner.id == contract.customer_id:
        raise Conflict("the contract already belongs to this customer", field="customer_id")
    if contract.status in (ContractStatus.CANCELLED.value, ContractStatus.ABANDONED.value):
        raise Conflict(f"a {contract.status} contract cannot be transferred", field="contract_id")
    previous = contract.customer_id
    contract.customer_id = new_owner.id
    product = await get_product(session, contract.product_id)
    product.customer_id = new_owner.id
    await audit.record(
        session, "contract", contract.id, A.TRANSFERRED, actor, customer_id=[previous, new_owner.id]
    )
    await audit.record(
        session, "product", product.id, A.TRANSFERRED, actor, customer_id=[previous, new_owner.id]
    )
    touch(session, product.id)
    moved = {
        "contract_id": contract.id,
        "product_id": product.id,
        "customer_id": new_owner.id,
        "previous_customer_id": previous,
    }
    (await unit_of_work(session)).emit(
        "contract.transferred", moved, product_id=product.id, contract_id=contract.id
    )
    return contract


# --- entitlement checks --------------------------------------------------------------------------


# The ways to look products up, and their longest values.
LOOKUP_LIMITS = {"serial": 64, "imei": 32, "contract_id": 64, "customer_id": 64, "order_ref": 128}


class Lookup(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Exactly one way to find the products to check."""

    serial: Annotated[str, msgspec.Meta(max_length=LOOKUP_LIMITS["serial"])] | None = None
    imei: Annotated[str, msgspec.Meta(max_length=LOOKUP_LIMITS["imei"])] | None = None
    contract_id: Annotated[str, msgspec.Meta(max_length=LOOKUP_LIMITS["contract_id"])] | None = None
    customer_id: Annotated[str, msgspec.Meta(max_length=LOOKUP_LIMITS["customer_id"])] | None = None
    order_ref: Annotated[str, msgspec.Meta(max_length=LOOKUP_LIMITS["order_ref"])] | None = None

    def only(self) -> tuple[str, str]:
        given = [(k, v) for k in LOOKUP_LIMITS if (v := getattr(self, k))]
        if len(given) != 1:
            raise InvalidInput(
                "give exactly one of serial, imei, contract_id, customer_id, order_ref", field="lookup"
            )
        return given[0]


def _normalized(kind: str, value: str) -> str:
    if kind == "serial":
        return normalize_serial(value)
    if kind == "imei":
        return normalize_imei(value)
    if kind == "order_ref":
        return clean_text(value, "order_ref", LOOKUP_LIMITS["order_ref"])
    return value


MAX_ANSWER_PRODUCTS = 2_000


async def resolve(source: SnapshotSource, lookups: list[Lookup]) -> list[list[ProductSnapshot]]:
    """The product snapshots each lookup names (an empty list: nothing found), one query per
    kind of lookup, however many lookups. An answer holds at most `MAX_ANSWER_PRODUCTS`
    products (1,000 lookups of customers with many products each once came to 15.9 MB)."""
    keyed = [(kind, _normalized(kind, value)) for kind, value in (lookup.only() for lookup in lookups)]
    wanted: dict[str, set[str]] = {}
    for kind, value in keyed:
        wanted.setdefault(kind, set()).add(value)
    raw: dict[tuple[str, str], list[str]] = {}
    for kind, values in wanted.items():
        for key, snapshot in await source.fetch(kind, sorted(values)):
            raw.setdefault((kind, key), []).append(snapshot)
    if sum(len(raw.get(item, ())) for item in keyed) > MAX_ANSWER_PRODUCTS:
        raise InvalidInput(
            f"these lookups name more than {MAX_ANSWER_PRODUCTS} products: ask for fewer at a time",
            field="lookups",
        )
    found = {item: [decode_snapshot(s) for s in snapshots] for item, snapshots in raw.items()}
    return [found.get(item, []) for item in keyed]
