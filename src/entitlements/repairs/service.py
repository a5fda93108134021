"""Repair centres and their service orders, in a unit of work.

An approved claim fulfilled by repair opens a service order, and so does a redeemed service that
needs a visit (an installation, a maintenance visit): offered to every servicer that serves
the product's category and country (the first to accept takes it; to the others it is then gone),
or assigned by an admin to one. A servicer sees and moves only its own orders, and the offered
ones it could take; any other is a 404, as if it did not exist. An estimate above what the claim
pays waits for a person's approval before the repair starts; a closed order fulfils the claim, and
one that cannot be repaired leaves the claim to be fulfilled by a replacement.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from sqlalchemy import ColumnElement, and_, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from entitlements.audit_names import Action
from entitlements.catalog import CountryCode, ProductCategory
from entitlements.claims.rules import REPLACEMENT_DUE, ClaimStatus
from entitlements.errors import Conflict, InvalidInput, NotFound
from entitlements.fields import NAME_LENGTH, new_id
from entitlements.identifiers import check_country, clean_text
from entitlements.money import Money, check_amount
from entitlements.repairs.rules import (
    ENDED,
    WAITING,
    Cost,
    Estimate,
    OrderStatus,
    can_move,
    estimate_waits,
    serves,
)
from entitlements.store import audit
from entitlements.store.base import found
from entitlements.store.pages import oldest_first
from entitlements.store.tables import (
    BenefitRedemptionRow,
    ClaimRow,
    CustomerRow,
    ProductRow,
    ServiceOrderRow,
    ServicerRow,
)
from entitlements.store.unit_of_work import touch, unit_of_work

NOTE_LENGTH = 2000
PAGE = 100
_NOT_SERVED = "servicer {} does not serve this product's category and country"


class ServicerInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_LENGTH)]
    categories: Annotated[list[ProductCategory], msgspec.Meta(min_length=1)]
    countries: list[CountryCode] = []  # empty: every country


class OrderReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A servicer's report: the order's next status, with the estimate when diagnosed and the
    cost when repaired."""

    status: OrderStatus
    estimate: Estimate | None = None
    cost: Cost | None = None
    note: Annotated[str, msgspec.Meta(max_length=NOTE_LENGTH)] | None = None


async def _order_event(session: AsyncSession, order: ServiceOrderRow, event_type: str) -> None:
    """The order's event; and its product's snapshot rewritten, since a check lists open orders."""
    touch(session, order.product_id)
    data = {
        "service_order_id": order.id,
        "claim_id": order.claim_id,
        "redemption_id": order.redemption_id,
        "contract_id": order.contract_id,
        "product_id": order.product_id,
        "servicer_id": order.servicer_id,
        "status": order.status,
        "estimate": msgspec.json.decode(order.estimate) if order.estimate else None,
        "cost": msgspec.json.decode(order.cost) if order.cost else None,
        "currency": order.currency,
    }
    (await unit_of_work(session)).emit(
        event_type, data, product_id=order.product_id, contract_id=order.contract_id
    )


# --- servicers -----------------------------------------------------------------------------------


async def create_servicer(
    session: AsyncSession, data: ServicerInput, *, actor: str, now: dt.datetime
) -> ServicerRow:
    for country in data.countries:
        check_country(country, "countries")
    row = ServicerRow(
        id=new_id("srv"),
        name=clean_text(data.name, "name", NAME_LENGTH),
        categories=msgspec.json.encode(sorted({c.value for c in data.categories})).decode(),
        countries=msgspec.json.encode(sorted(set(data.countries))).decode(),
        active=True,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    await audit.record(session, "servicer", row.id, Action.CREATED, actor, name=row.name)
    return row


async def get_servicer(session: AsyncSession, servicer_id: str) -> ServicerRow:
    return await found(session, ServicerRow, servicer_id, "servicer", "servicer_id")


async def list_servicers(session: AsyncSession) -> list[ServicerRow]:
    return list(await session.scalars(select(ServicerRow).order_by(ServicerRow.created_at, ServicerRow.id)))


def _serves(servicer: ServicerRow, order: ServiceOrderRow) -> bool:
    return servicer.active and serves(
        msgspec.json.decode(servicer.categories),
        msgspec.json.decode(servicer.countries),
        order.category,
        order.country,
    )


# --- orders --------------------------------------------------------------------------------------


async def open_order(
    session: AsyncSession, claim: ClaimRow, *, servicer_id: str | None, actor: str, now: dt.datetime
) -> ServiceOrderRow:
    """The repair of an approved claim's product: offered, or assigned to `servicer_id`."""
    order = await _new_order(
        session,
        claim.product_id,
        servicer_id,
        claim_id=claim.id,
        contract_id=claim.contract_id,
        incident_kind=claim.incident_kind,
        incident_date=claim.incident_date,
        problem=claim.description,
        currency=claim.currency,
        payable=claim.covered_amount,
        now=now,
    )
    await _opened(session, order, actor, claim_id=claim.id)
    return order


async def open_visit(
    session: AsyncSession,
    redemption: BenefitRedemptionRow,
    *,
    servicer_id: str | None,
    actor: str,
    now: dt.datetime,
) -> ServiceOrderRow:
    """The visit an included service needs (its kind in `incident_kind`): offered, or assigned
    to `servicer_id`. The plan includes it, so nothing is payable beyond what the visit costs."""
    order = await _new_order(
        session,
        redemption.product_id,
        servicer_id,
        redemption_id=redemption.id,
        contract_id=redemption.contract_id,
        incident_kind=redemption.kind,
        incident_date=None,
        problem=redemption.note,
        currency=redemption.currency,
        payable=0,
        now=now,
    )
    await _opened(session, order, actor, redemption_id=redemption.id)
    return order


async def _new_order(
    session: AsyncSession, product_id: str, servicer_id: str | None, *, now: dt.datetime, **job: Any
) -> ServiceOrderRow:
    product = await session.get(ProductRow, product_id)
    assert product is not None  # a claim's or a redemption's product exists (foreign key)
    customer = await session.get(CustomerRow, product.customer_id)
    assert customer is not None
    order = ServiceOrderRow(
        id=new_id("so"),
        product_id=product_id,
        servicer_id=None,
        category=product.category,
        country=customer.country,
        sku=product.sku,
        serial=product.serial,
        status=OrderStatus.OFFERED.value,
        created_at=now,
        updated_at=now,
        **job,
    )
    if servicer_id is not None:
        servicer = await get_servicer(session, servicer_id)
        if not _serves(servicer, order):
            raise InvalidInput(_NOT_SERVED.format(servicer_id), field="servicer_id")
        order.servicer_id, order.status = servicer.id, OrderStatus.ASSIGNED.value
    session.add(order)
    await session.flush()
    return order


async def _opened(session: AsyncSession, order: ServiceOrderRow, actor: str, **purpose: str) -> None:
    await audit.record(
        session,
        "service_order",
        order.id,
        OrderStatus(order.status),
        actor,
        servicer_id=order.servicer_id,
        **purpose,
    )
    await _order_event(session, order, f"service_order.{order.status}")


async def cancel_visit(
    session: AsyncSession, order: ServiceOrderRow, *, actor: str, now: dt.datetime
) -> None:
    """A visit no servicer has accepted yet, withdrawn (its redemption was voided)."""
    await _withdraw(session, [order], "the visit's", "redemption_id", actor=actor, now=now)


async def withdraw_claims_orders(
    session: AsyncSession, claim_id: str, *, actor: str, now: dt.datetime
) -> None:
    """A voided claim's open service orders, withdrawn while no servicer has accepted them; one a
    servicer has accepted is its to end (cannot_repair, or repaired and closed), so the void
    waits for that: a servicer never works on, or books the cost of, a claim voided under it."""
    orders = await session.scalars(
        select(ServiceOrderRow)
        .where(ServiceOrderRow.claim_id == claim_id, ServiceOrderRow.status.not_in([s.value for s in ENDED]))
        .with_for_update()
    )
    await _withdraw(session, list(orders), "the claim's", "claim_id", actor=actor, now=now)


async def _withdraw(
    session: AsyncSession,
    orders: list[ServiceOrderRow],
    whose: str,
    field: str,
    *,
    actor: str,
    now: dt.datetime,
) -> None:
    if taken := next((o for o in orders if OrderStatus(o.status) not in WAITING), None):
        raise Conflict(
            f"{whose} service order {taken.id} is {taken.status}: its servicer ends it", field=field
        )
    for order in orders:
        order.status, order.updated_at = OrderStatus.CANCELLED.value, now
        await audit.record(session, "service_order", order.id, OrderStatus.CANCELLED, actor)
        await _order_event(session, order, "service_order.cancelled")


def _visible(servicer: ServicerRow | None) -> ColumnElement[bool]:
    """Which orders a viewer sees: all for the merchant's keys (None); for a servicer, its own and
    the offered ones it could take."""
    if servicer is None:
        return true()
    own = ServiceOrderRow.servicer_id == servicer.id
    if not servicer.active:
        return own
    categories = msgspec.json.decode(servicer.categories)
    countries = msgspec.json.decode(servicer.countries)
    offered = and_(
        ServiceOrderRow.status == OrderStatus.OFFERED.value,
        ServiceOrderRow.servicer_id.is_(None),
        ServiceOrderRow.category.in_(categories),
        ServiceOrderRow.country.in_(countries) if countries else true(),
    )
    return or_(own, offered)


async def _viewer(session: AsyncSession, servicer_id: str | None) -> ServicerRow | None:
    return None if servicer_id is None else await get_servicer(session, servicer_id)


async def get_order(
    session: AsyncSession, order_id: str, *, servicer_id: str | None, lock: bool = False
) -> ServiceOrderRow:
    viewer = await _viewer(session, servicer_id)
    query = select(ServiceOrderRow).where(ServiceOrderRow.id == order_id, _visible(viewer))
    if lock:
        query = query.with_for_update()
    order = await session.scalar(query.execution_options(populate_existing=True))
    if order is None:
        raise NotFound(f"no service order {order_id}", field="order_id")
    return order


async def list_orders(
    session: AsyncSession,
    *,
    servicer_id: str | None,
    status: OrderStatus | None,
    cursor: str | None,
    limit: int = PAGE,
) -> tuple[list[ServiceOrderRow], str | None]:
    """Oldest first; the cursor is the last order's id."""
    viewer = await _viewer(session, servicer_id)
    query = select(ServiceOrderRow).where(_visible(viewer))
    if status is not None:
        query = query.where(ServiceOrderRow.status == status.value)
    return await oldest_first(session, query, ServiceOrderRow, cursor, limit)


async def accept_order(
    session: AsyncSession, order_id: str, *, servicer_id: str, actor: str, now: dt.datetime
) -> ServiceOrderRow:
    """The servicer takes an order offered to it (the first to accept wins; for the others it is
    gone: 404) or assigned to it."""
    order = await get_order(session, order_id, servicer_id=servicer_id)
    taken = await session.execute(
        update(ServiceOrderRow)
        .where(
            ServiceOrderRow.id == order.id,
            or_(
                and_(
                    ServiceOrderRow.status == OrderStatus.OFFERED.value, ServiceOrderRow.servicer_id.is_(None)
                ),
                and_(
                    ServiceOrderRow.status == OrderStatus.ASSIGNED.value,
                    ServiceOrderRow.servicer_id == servicer_id,
                ),
            ),
        )
        .values(servicer_id=servicer_id, status=OrderStatus.ACCEPTED.value, updated_at=now)
        .returning(ServiceOrderRow.id)
        .execution_options(synchronize_session=False)  # the row as the database has it, read next
    )
    if taken.first() is None:  # another servicer took it first (gone: 404), or it is past accepting
        order = await get_order(session, order_id, servicer_id=servicer_id)
        raise Conflict(f"the order is {order.status}, not waiting to be accepted", field="order_id")
    order = await get_order(session, order_id, servicer_id=servicer_id)
    await audit.record(session, "service_order", order.id, Action.ACCEPTED, actor, servicer_id=servicer_id)
    await _order_event(session, order, "service_order.accepted")
    return order


async def assign_order(
    session: AsyncSession, order_id: str, *, servicer_id: str, actor: str, now: dt.datetime
) -> ServiceOrderRow:
    """An admin gives an order no servicer has accepted yet to one that serves it."""
    order = await get_order(session, order_id, servicer_id=None, lock=True)
    if OrderStatus(order.status) not in WAITING:
        raise Conflict(f"the order is {order.status}: a servicer has it", field="order_id")
    servicer = await get_servicer(session, servicer_id)
    if not _serves(servicer, order):
        raise InvalidInput(_NOT_SERVED.format(servicer_id), field="servicer_id")
    order.servicer_id, order.status, order.updated_at = servicer.id, OrderStatus.ASSIGNED.value, now
    await audit.record(session, "service_order", order.id, Action.ASSIGNED, actor, servicer_id=servicer.id)
    await _order_event(session, order, "service_order.assigned")
    return order


async def report(
    session: AsyncSession, order_id: str, data: OrderReport, *, servicer_id: str, actor: str, now: dt.datetime
) -> ServiceOrderRow:
    """The servicer's next step on its own order."""
    order = await get_order(session, order_id, servicer_id=servicer_id, lock=True)
    if order.servicer_id != servicer_id:
        raise NotFound(f"no service order {order_id}", field="order_id")  # offered, not yet taken
    current = OrderStatus(order.status)
    if not can_move(current, data.status, visit=order.redemption_id is not None):
        raise Conflict(f"an order that is {current.value} cannot become {data.status.value}", field="status")
    if data.status is OrderStatus.DIAGNOSED:
        if data.estimate is None:
            raise InvalidInput("a diagnosis gives its estimate of parts and labour", field="estimate")
        check_amount(Money(data.estimate.total, order.currency), "estimate")
        order.estimate = msgspec.json.encode(data.estimate).decode()
        order.estimate_approved_by = None
    if data.status is OrderStatus.REPAIR_STARTED and order.estimate is not None:
        estimate = msgspec.json.decode(order.estimate, type=Estimate)
        if estimate_waits(estimate, order.payable) and order.estimate_approved_by is None:
            raise Conflict(
                f"the estimate ({estimate.total}) is above what the claim pays ({order.payable}): it"
                " waits for approval",
                field="status",
            )
    if data.status is OrderStatus.REPAIRED:
        if data.cost is None:
            raise InvalidInput("a repair reports its cost: parts, labour and shipping", field="cost")
        check_amount(Money(data.cost.total, order.currency), "cost")  # as any claim's cost
        approved = _approved_cost(order)
        if approved is not None and data.cost.total > approved:
            raise Conflict(
                f"the cost ({data.cost.total}) is above what this repair may cost ({approved}: the"
                " estimate approved, else what the claim pays)",
                field="cost",
            )
        order.cost = msgspec.json.encode(data.cost).decode()
    note = clean_text(data.note, "note", NOTE_LENGTH) if data.note else None
    order.status, order.updated_at = data.status.value, now
    if note:
        order.note = note
    await audit.record(
        session, "service_order", order.id, data.status, actor, servicer_id=servicer_id, note=note
    )
    await _order_event(session, order, f"service_order.{data.status.value}")
    if data.status in ENDED and order.claim_id is not None:
        await _end_claim(session, order, order.claim_id, actor=actor, now=now)
    if data.status is OrderStatus.CANNOT_REPAIR and order.redemption_id is not None:
        from entitlements.benefits.service import void_for_failed_visit  # the benefits feature's own

        await void_for_failed_visit(session, order, actor=actor, now=now)
    return order


def _approved_cost(order: ServiceOrderRow) -> int | None:
    """What a claim's repair may cost, shipping included: what the claim pays, or more where a
    person approved an estimate above it (that estimate). (A visit the plan includes has no
    claim to pay from and no estimate: None, bounded by the currency's ceiling alone.)"""
    if order.claim_id is None:
        return None
    if order.estimate is not None and order.estimate_approved_by is not None:
        return max(msgspec.json.decode(order.estimate, type=Estimate).total, order.payable)
    return order.payable


async def approve_estimate(
    session: AsyncSession, order_id: str, *, agent: str, actor: str, now: dt.datetime
) -> ServiceOrderRow:
    order = await get_order(session, order_id, servicer_id=None, lock=True)
    if order.status != OrderStatus.DIAGNOSED.value or order.estimate is None:
        raise Conflict(f"the order is {order.status}: no estimate waits", field="order_id")
    order.estimate_approved_by, order.updated_at = agent, now
    await audit.record(session, "service_order", order.id, Action.ESTIMATE_APPROVED, actor, agent=agent)
    await _order_event(session, order, "service_order.estimate_approved")
    return order


async def _end_claim(
    session: AsyncSession, order: ServiceOrderRow, claim_id: str, *, actor: str, now: dt.datetime
) -> None:
    """A closed order fulfils its claim; one that cannot be repaired leaves it to a replacement."""
    from entitlements.claims.service import claim_events  # the claims feature's own event shape

    claim = await session.get(ClaimRow, claim_id, populate_existing=True)
    assert claim is not None
    if claim.status != ClaimStatus.APPROVED.value:
        return  # voided meanwhile: nothing to fulfil
    if order.status == OrderStatus.CLOSED.value:
        claim.status, claim.fulfilled_at = ClaimStatus.FULFILLED.value, now
        await audit.record(session, "claim", claim.id, Action.FULFILLED, actor, service_order_id=order.id)
        await claim_events(session, claim, ("claim.fulfilled",))
    else:
        claim.fulfilment = REPLACEMENT_DUE
        await audit.record(
            session, "claim", claim.id, Action.REPLACEMENT_DUE, actor, service_order_id=order.id
        )
