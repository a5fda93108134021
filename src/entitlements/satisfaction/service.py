"""Satisfaction in a unit of work: a request made once per closed service order or redeemed
service (whichever asks first, on any worker, makes it), answered once, and the report."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from entitlements.audit_names import Action
from entitlements.catalog import BenefitKind
from entitlements.errors import Conflict, InvalidInput, NotFound
from entitlements.fields import new_id
from entitlements.identifiers import clean_text
from entitlements.satisfaction.rules import COMMENT_LENGTH, RATINGS, Answer, MonthLine, Subject, monthly
from entitlements.store import audit
from entitlements.store.tables import (
    BenefitRedemptionRow,
    ContractRow,
    CustomerRow,
    SatisfactionRow,
    ServiceOrderRow,
)


async def request_for(
    session: AsyncSession, subject: Subject, subject_id: str, *, now: dt.datetime, days: int
) -> SatisfactionRow | None:
    """The request about a closed service order or a redeemed service, made on first ask and
    kept (a retried letter finds the same one); None: nothing to ask about."""
    found = await _request(session, subject, subject_id)
    if found is not None:
        return found
    servicer: str | None = None
    if subject is Subject.SERVICE_ORDER:
        order = await session.get(ServiceOrderRow, subject_id)
        if order is None:
            return None
        contract_id, servicer = order.contract_id, order.servicer_id
    else:
        redemption = await session.get(BenefitRedemptionRow, subject_id)
        if redemption is None:
            return None
        contract_id = redemption.contract_id
    contract = await session.get(ContractRow, contract_id)
    assert contract is not None  # a foreign key
    await session.execute(
        insert(SatisfactionRow)
        .values(
            id=new_id("sat"),
            subject_kind=subject.value,
            subject_id=subject_id,
            customer_id=contract.customer_id,
            contract_id=contract.id,
            plan_code=contract.plan_code,
            servicer_id=servicer,
            created_at=now,
            expires_at=now + dt.timedelta(days=days),
        )
        .on_conflict_do_nothing(index_elements=["subject_kind", "subject_id"])
    )
    return await _request(session, subject, subject_id)


async def _request(session: AsyncSession, subject: Subject, subject_id: str) -> SatisfactionRow | None:
    return await session.scalar(
        select(SatisfactionRow)
        .where(SatisfactionRow.subject_kind == subject.value, SatisfactionRow.subject_id == subject_id)
        .execution_options(populate_existing=True)
    )


async def open_request(session: AsyncSession, request_id: str, now: dt.datetime) -> SatisfactionRow:
    """A request that can still be answered: not answered, not expired (one answer to both)."""
    row = await session.get(SatisfactionRow, request_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise NotFound("no such request", field="token")
    if row.answered_at is not None or row.expires_at <= now:
        raise Conflict("this link has expired or was already used", field="token")
    return row


async def asked_about(session: AsyncSession, row: SatisfactionRow) -> tuple[BenefitKind | None, str | None]:
    """What the request asks about (an included service's kind; None: a repair) and its
    customer's language."""
    kind: str | None = None
    if row.subject_kind == Subject.REDEMPTION:
        redemption = await session.get(BenefitRedemptionRow, row.subject_id)
        kind = redemption.kind if redemption else None
    else:
        order = await session.get(ServiceOrderRow, row.subject_id)
        kind = order.incident_kind if order and order.redemption_id else None
    customer = await session.get(CustomerRow, row.customer_id)
    return (BenefitKind(kind) if kind else None), (customer.locale if customer else None)


async def answer(
    session: AsyncSession, request_id: str, rating: int, comment: str | None, *, now: dt.datetime
) -> SatisfactionRow:
    """The customer's one answer: a rating from 1 to 5 and an optional comment."""
    if rating not in RATINGS:
        raise InvalidInput("a rating is a whole number from 1 to 5", field="rating")
    row = await open_request(session, request_id, now)
    row.rating, row.answered_at = rating, now
    row.comment = clean_text(comment, "comment", COMMENT_LENGTH) if comment and comment.strip() else None
    await audit.record(session, "satisfaction", row.id, Action.ANSWERED, "customer", rating=rating)
    return row


async def satisfaction_report(
    session: AsyncSession, since: dt.datetime, until: dt.datetime
) -> list[MonthLine]:
    """Ratings answered in [since, until), per month, plan and servicer."""
    rows = await session.execute(
        select(
            SatisfactionRow.answered_at,
            SatisfactionRow.plan_code,
            SatisfactionRow.servicer_id,
            SatisfactionRow.rating,
        ).where(SatisfactionRow.answered_at >= since, SatisfactionRow.answered_at < until)
    )
    return monthly(
        Answer(at, plan, servicer, rating)
        for at, plan, servicer, rating in rows
        if at is not None and rating is not None  # answered: both are set together
    )
