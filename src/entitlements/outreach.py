"""Proactive outreach, as a scheduled job (`outreach.sweep`): before coverage is lost, and for a
product bought without a plan.

- `renewal.upcoming`: the plan's notice days (`Plan.renewal_notice`) before each renewal of an
  auto-renewing contract, from our own schedule (the last paid day of its coverage periods).
- `coverage.ending`: 30 days before a fixed term ends, with signed offers of the plans the
  product can still be sold, valid until the cover ends.
- `contract.getting_started`: `getting_started_after` (3 days) after a sale, what the plan
  includes beyond repair and the training resources for the product's category, once.
- `offer.lead`: a product registered without a plan, once `lead_after` has passed, while a plan
  can still be sold for it: a lead token (only its hash is kept) that `POST /v1/offers` takes in
  place of the product's facts, valid until the last plan's purchase window closes; a sale
  consumes it.

Each notice is written once: its key (kind, contract or product, due instant) is inserted in the
same unit of work as its event, so a second sweep, on this worker or another, after a restart or
at the same moment, finds it taken and says nothing.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import Table, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from entitlements.catalog import Plan, ProductFacts, assess
from entitlements.coverage import ContractStatus
from entitlements.errors import Conflict, InvalidInput
from entitlements.money import Money
from entitlements.offers.rules import OfferedProduct, OfferKeyring, quote_plans
from entitlements.store.leads import LEAD, leads, token_hash
from entitlements.store.plans import plan_from
from entitlements.store.tables import (
    CustomerRow,
    OutreachRow,
    PlanRow,
    ProductRow,
)
from entitlements.store.unit_of_work import Units, unit_of_work
from entitlements.zones import country_days

RENEWAL_UPCOMING, COVERAGE_ENDING, OFFER_LEAD = "renewal.upcoming", "coverage.ending", "offer.lead"
GETTING_STARTED = "contract.getting_started"
# A contract sold longer ago than this before its letter was due is not written to any more.
GETTING_STARTED_LATEST = dt.timedelta(days=30)
ENDING_NOTICE = dt.timedelta(days=30)
BATCH = 200
LEAD_PREFIX = "lead_"

outreach: Table = OutreachRow.__table__  # type: ignore[assignment]
plans_table: Table = PlanRow.__table__  # type: ignore[assignment]
products: Table = ProductRow.__table__  # type: ignore[assignment]
customers: Table = CustomerRow.__table__  # type: ignore[assignment]


class Report(msgspec.Struct):
    renewal_upcoming: int = 0
    coverage_ending: int = 0
    offer_lead: int = 0
    getting_started: int = 0

    def by_kind(self) -> dict[str, int]:
        """The counts by the event type each notice is told as."""
        return {
            RENEWAL_UPCOMING: self.renewal_upcoming,
            COVERAGE_ENDING: self.coverage_ending,
            OFFER_LEAD: self.offer_lead,
            GETTING_STARTED: self.getting_started,
        }


# Contracts whose last paid day falls in their notice window and that have not been told of it:
# (contract, product, customer, plan code, version, that last instant).
_DUE = text(
    """
    SELECT c.id, c.product_id, c.customer_id, c.plan_code, c.plan_version, p.ends_at
    FROM coverage_periods p
    JOIN contracts c ON c.id = p.contract_id
    JOIN unnest(CAST(:codes AS text[]), CAST(:versions AS int[]), CAST(:days AS int[]))
         AS n(code, version, days) ON n.code = c.plan_code AND n.version = c.plan_version
    WHERE p.ends_at > :now AND p.ends_at <= :horizon
      AND p.ends_at - make_interval(days => n.days) <= :now
      AND c.status = :status
      AND NOT EXISTS (SELECT 1 FROM coverage_periods q WHERE q.contract_id = c.id AND q.ends_at > p.ends_at)
      AND NOT EXISTS (SELECT 1 FROM outreach o
                      WHERE o.kind = :kind AND o.subject_id = c.id AND o.due_at = p.ends_at)
    ORDER BY p.ends_at, c.id
    LIMIT :batch
    """
).bindparams(
    bindparam("codes"),
    bindparam("versions"),
    bindparam("days"),
    bindparam("now"),
    bindparam("horizon"),
    bindparam("status"),
    bindparam("kind"),
    bindparam("batch"),
)
# Products with no contract, registered before `:before`, bought on or after `:bought_since`, that
# have had no lead considered.
_LEADLESS = text(
    """
    SELECT pr.id, pr.customer_id, pr.sku, pr.category, pr.price_amount, pr.currency,
           pr.purchase_date, pr.serial, cu.country
    FROM products pr JOIN customers cu ON cu.id = pr.customer_id
    WHERE pr.created_at <= :before AND pr.purchase_date >= :bought_since
      AND NOT EXISTS (SELECT 1 FROM contracts c WHERE c.product_id = pr.id)
      AND NOT EXISTS (SELECT 1 FROM outreach o WHERE o.kind = :kind AND o.subject_id = pr.id)
    ORDER BY pr.created_at, pr.id
    LIMIT :batch
    """
).bindparams(bindparam("before"), bindparam("bought_since"), bindparam("kind"), bindparam("batch"))
# Active contracts sold in (since, before] that were not written to: (contract, product, customer,
# plan code, version, sold, the product's category), a batch at a time after the last one's
# (sold_at, id): each batch reads its own rows, not again every row the batches before it noted.
_SOLD = text(
    """
    SELECT c.id, c.product_id, c.customer_id, c.plan_code, c.plan_version, c.sold_at, pr.category
    FROM contracts c JOIN products pr ON pr.id = c.product_id
    WHERE c.sold_at <= :before AND c.sold_at > :since AND c.status = :status
      AND (c.sold_at, c.id) > (:after_sold, :after_id)
      AND NOT EXISTS (SELECT 1 FROM outreach o WHERE o.kind = :kind AND o.subject_id = c.id)
    ORDER BY c.sold_at, c.id
    LIMIT :batch
    """
).bindparams(
    bindparam("before"),
    bindparam("since"),
    bindparam("status"),
    bindparam("after_sold"),
    bindparam("after_id"),
    bindparam("kind"),
    bindparam("batch"),
)
_TRAINED = text("SELECT DISTINCT category FROM training_resources")
_PLANS = select(plans_table.c.code, plans_table.c.version, plans_table.c.digest, plans_table.c.definition)
_PRODUCT_FACTS = (
    select(
        products.c.id,
        products.c.sku,
        products.c.category,
        products.c.price_amount,
        products.c.currency,
        products.c.purchase_date,
        products.c.serial,
        customers.c.country,
    )
    .select_from(products.join(customers, customers.c.id == products.c.customer_id))
    .where(products.c.id == bindparam("product_id"))
)


async def _published(units: Units) -> list[Plan]:
    async with units() as run:
        return [plan_from(*row) for row in await run.rows(_PLANS)]


def _newest(plans: Sequence[Plan]) -> list[Plan]:
    newest: dict[str, Plan] = {}
    for plan in plans:
        if plan.code not in newest or plan.version > newest[plan.code].version:
            newest[plan.code] = plan
    return list(newest.values())


async def sweep(
    units: Units,
    now: dt.datetime,
    *,
    keyring: OfferKeyring,
    lead_after: dt.timedelta,
    lead_url: str | None,
    getting_started_after: dt.timedelta = dt.timedelta(days=3),
) -> Report:
    """Every notice due by `now` and not yet written, a batch per unit of work."""
    plans = await _published(units)
    sellable = [p for p in _newest(plans) if p.active]
    report = Report()
    renewing = [(p, days) for p in plans if (days := p.renewal_notice()) is not None]
    report.renewal_upcoming = await _notices(units, now, RENEWAL_UPCOMING, renewing, sellable, keyring)
    ending = [(p, ENDING_NOTICE.days) for p in plans if not p.auto_renew]
    report.coverage_ending = await _notices(units, now, COVERAGE_ENDING, ending, sellable, keyring)
    report.offer_lead = await _leads(units, now, sellable, lead_after, lead_url)
    report.getting_started = await _getting_started(units, now, plans, getting_started_after)
    return report


async def _getting_started(units: Units, now: dt.datetime, plans: Sequence[Plan], after: dt.timedelta) -> int:
    """The letter a few days after a sale, for a plan that includes services or support, or a
    product with training resources; any other sale is noted with nothing said."""
    by_key = {(p.code, p.version): p for p in plans}
    since = now - after - GETTING_STARTED_LATEST
    params = {
        "before": now - after,
        "since": since,
        "status": ContractStatus.ACTIVE.value,
        "after_sold": since,
        "after_id": "",
        "kind": GETTING_STARTED,
        "batch": BATCH,
    }
    written = 0
    while True:
        async with units() as run:
            trained = {row[0] for row in await run.rows(_TRAINED)}
            found = await run.rows(_SOLD, **params)
            for contract_id, product_id, customer_id, code, version, sold_at, category in found:
                plan = by_key.get((code, version))
                worth = plan is not None and (
                    plan.benefits or plan.support is not None or category in trained
                )
                if not await _note(run, GETTING_STARTED, contract_id, sold_at + after, now) or not worth:
                    continue
                data = {
                    "contract_id": contract_id,
                    "product_id": product_id,
                    "customer_id": customer_id,
                    "plan_code": code,
                    "plan_version": version,
                    "category": category,
                }
                run.emit(GETTING_STARTED, data, product_id=product_id, contract_id=contract_id)
                written += 1
        if len(found) < BATCH:
            return written
        params["after_id"], params["after_sold"] = found[-1][0], found[-1][5]


async def _notices(
    units: Units,
    now: dt.datetime,
    kind: str,
    windows: list[tuple[Plan, int]],
    sellable: list[Plan],
    keyring: OfferKeyring,
) -> int:
    if not windows:
        return 0
    longest = max(days for _, days in windows)
    params: dict[str, Any] = {
        "codes": [p.code for p, _ in windows],
        "versions": [p.version for p, _ in windows],
        "days": [days for _, days in windows],
        "now": now,
        "horizon": now + dt.timedelta(days=longest),
        "status": ContractStatus.ACTIVE.value,
        "kind": kind,
        "batch": BATCH,
    }
    by_key = {(p.code, p.version): p for p, _ in windows}
    written = 0
    while True:
        async with units() as run:
            due = await run.rows(_DUE, **params)
            for contract_id, product_id, customer_id, code, version, ends_at in due:
                data: dict[str, Any] = {
                    "contract_id": contract_id,
                    "product_id": product_id,
                    "customer_id": customer_id,
                    "plan_code": code,
                    "plan_version": version,
                }
                if kind == RENEWAL_UPCOMING:
                    plan = by_key[(code, version)]
                    data |= {"renews_at": ends_at.isoformat(), "billing": plan.billing.value}
                else:
                    facts = await _facts(run, product_id)
                    offers = _offers(sellable, facts, keyring, now, until=ends_at) if facts else []
                    data |= {"ends_at": ends_at.isoformat(), "offers": offers}
                if await _note(run, kind, contract_id, ends_at, now):
                    run.emit(kind, data, product_id=product_id, contract_id=contract_id)
                    written += 1
        if len(due) < BATCH:
            return written


async def _note(run: Any, kind: str, subject_id: str, due_at: dt.datetime, now: dt.datetime) -> bool:
    """Take the notice's key; False when another sweep took it first."""
    return bool(
        await run.insert_new(
            outreach, kind=kind, subject_id=subject_id, due_at=due_at, event_id=None, created_at=now
        )
    )


async def _facts(run: Any, product_id: str) -> OfferedProduct | None:
    row = await run.row(_PRODUCT_FACTS, product_id=product_id)
    if row is None:
        return None
    _, sku, category, price, currency, purchase_date, serial, country = row
    return OfferedProduct(category, sku, Money(price, currency), purchase_date, country, serial)


def _offers(
    plans: list[Plan], product: OfferedProduct, keyring: OfferKeyring, now: dt.datetime, *, until: dt.datetime
) -> list[dict[str, Any]]:
    """Signed offers of every plan the product can be sold now, valid until `until`."""
    quotes, _ = quote_plans(plans, product, locale="en", keyring=keyring, now=now, ttl=until - now)
    return [
        {
            "plan_code": q.plan.code,
            "plan_version": q.plan.version,
            "price": {"amount": q.terms.price.amount, "currency": q.terms.price.currency},
            "offer_token": q.token,
            "expires_at": dt.datetime.fromtimestamp(q.terms.expires_at, dt.UTC).isoformat(),
        }
        for q in quotes
    ]


def eligible(plans: list[Plan], product: OfferedProduct, now: dt.datetime) -> list[Plan]:
    """The plans that can be sold for the product today."""
    facts = ProductFacts(product.category, product.price, product.purchase_date, product.country)
    today = country_days(now, facts.country)
    return [plan for plan in plans if assess(plan, facts, today).eligible]


async def _leads(
    units: Units,
    now: dt.datetime,
    sellable: list[Plan],
    lead_after: dt.timedelta,
    lead_url: str | None,
) -> int:
    if not sellable:
        return 0
    window = max(p.eligibility.max_days_since_purchase for p in sellable)
    params = {
        "before": now - lead_after,
        "bought_since": (now - dt.timedelta(days=window + 1)).date(),
        "kind": OFFER_LEAD,
        "batch": BATCH,
    }
    written = 0
    while True:
        async with units() as run:
            found = await run.rows(_LEADLESS, **params)
            for product_id, customer_id, sku, category, price, currency, bought, serial, country in found:
                product = OfferedProduct(category, sku, Money(price, currency), bought, country, serial)
                offered = eligible(sellable, product, now)
                if not offered:  # nothing can be sold for it: noted, never looked at again
                    await _note(run, OFFER_LEAD, product_id, now, now)
                    continue
                window = max(p.eligibility.max_days_since_purchase for p in offered)
                last_day = bought + dt.timedelta(days=window)
                expires_at = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), dt.UTC)
                if not await _note(run, OFFER_LEAD, product_id, expires_at, now):
                    continue
                token = LEAD_PREFIX + secrets.token_urlsafe(24)
                lead_id = f"lead_{secrets.token_hex(10)}"
                await run.insert_new(
                    leads,
                    id=lead_id,
                    token_hash=token_hash(token),
                    product_id=product_id,
                    expires_at=expires_at,
                    consumed_at=None,
                    contract_id=None,
                    created_at=now,
                )
                data = {
                    "lead_id": lead_id,
                    "product_id": product_id,
                    "customer_id": customer_id,
                    "lead_token": token,
                    "url": lead_url.replace("{token}", token) if lead_url else None,
                    "expires_at": expires_at.isoformat(),
                    "plans": [p.code for p in offered],
                }
                run.emit(OFFER_LEAD, data, product_id=product_id)
                written += 1
        if len(found) < BATCH:
            return written


# --- the lead's side of a sale -------------------------------------------------------------------


async def lead_for_offer(session: AsyncSession, token: str, now: dt.datetime) -> tuple[str, OfferedProduct]:
    """The lead's id and its product's facts, as `POST /v1/offers` takes them; a problem when
    the token is unknown, used or expired."""
    run = await unit_of_work(session)
    row = await run.row(LEAD, token_hash=token_hash(token))
    if row is None:
        raise InvalidInput("unknown lead token", field="lead_token")
    lead_id, product_id, expires_at, consumed_at = row
    if consumed_at is not None:
        raise Conflict("this lead has been used for a sale", field="lead_token")
    if now >= expires_at:
        raise InvalidInput(
            "this lead has expired: the product can no longer be protected", field="lead_token"
        )
    facts = await _facts(run, product_id)
    assert facts is not None  # a lead's product is never deleted
    return lead_id, facts
