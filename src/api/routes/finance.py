"""Finance: the ledger and deferred revenue, as JSON pages and CSV. Ids only, never customer PII."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import access_guard
from api.dependencies import Injected, Services
from api.errors import problem_responses
from api.keys import Scope
from api.views import instant_query, parse_instant
from billing.finance.claim_costs import ClaimCostLine, claim_costs, loss_ratio_report
from billing.finance.reconcile import Reconciliation, ledger_of, reconcile
from billing.finance.renewals import RenewalLine, renewals_report
from billing.finance.rules import LossRatio
from billing.ledger.service import (
    LedgerFilter,
    csv_header,
    csv_line,
    ledger_page,
    ledger_rows,
    revenue_positions,
)
from entitlements.clock import utcnow
from entitlements.errors import InvalidInput
from entitlements.identifiers import ascii_digits
from entitlements.money import Money

Since = Annotated[str | None, instant_query("from", "inclusive")]
Until = Annotated[str | None, instant_query("to", "exclusive")]
AsOf = Annotated[str | None, instant_query("as_of", "default now")]
Currency = Annotated[str | None, QueryParameter(pattern=r"^[A-Z]{3}$", required=False)]
ContractId = Annotated[str | None, QueryParameter(max_length=64, required=False)]
Bom = Annotated[bool, QueryParameter(required=False, description="start with a UTF-8 BOM (for Excel)")]


REVENUE_COLUMNS = (
    "as_of",
    "currency",
    "collected_minor",
    "recognized_minor",
    "deferred_minor",
    "collected",
    "recognized",
    "deferred",
)


class LedgerEntry(msgspec.Struct, frozen=True):
    id: int
    occurred_at: dt.datetime
    kind: str
    amount: Money
    amount_decimal: str
    contract_id: str | None
    period_start: dt.datetime | None
    period_end: dt.datetime | None
    stripe_payment_intent: str | None
    stripe_charge: str | None
    stripe_invoice: str | None
    stripe_refund: str | None
    stripe_dispute: str | None
    stripe_balance_transaction: str | None


class LedgerPage(msgspec.Struct, frozen=True):
    data: list[LedgerEntry]
    next_cursor: str | None


class RevenuePosition(msgspec.Struct, frozen=True):
    currency: str
    collected: Money
    recognized: Money
    deferred: Money


class DeferredRevenue(msgspec.Struct, frozen=True):
    as_of: dt.datetime
    data: list[RevenuePosition]


def _filter(
    since: str | None, until: str | None, currency: str | None, contract_id: str | None
) -> LedgerFilter:
    start, end = parse_instant(since, "from"), parse_instant(until, "to")
    if start is not None and end is not None:
        _in_order(start, end)
    return LedgerFilter(start, end, currency, contract_id)


def _in_order(start: dt.datetime, end: dt.datetime) -> None:
    """A range whose `from` is not before its `to` holds nothing: refused, not answered empty."""
    if start >= end:
        raise InvalidInput("`from` comes before `to`", field="from")


def _cursor(raw: str | None) -> int:
    if raw is None:
        return 0
    if not ascii_digits(raw) or len(raw) > 18:
        raise InvalidInput("not a cursor from this API", field="cursor")
    return int(raw)


async def _deferred(session: AsyncSession, as_of: dt.datetime, currency: str | None) -> DeferredRevenue:
    return DeferredRevenue(
        as_of,
        [
            RevenuePosition(
                p.currency,
                Money(p.collected, p.currency),
                Money(p.recognized, p.currency),
                Money(p.deferred, p.currency),
            )
            for p in await revenue_positions(session, as_of, currency)
        ],
    )


class RenewalsReport(msgspec.Struct, frozen=True):
    since: dt.datetime
    until: dt.datetime
    data: list[RenewalLine]


def report_range(since: str | None, until: str | None, days: int = 366) -> tuple[dt.datetime, dt.datetime]:
    """The range asked for; without `to`, up to now; without `from`, the `days` before `to`."""
    end = parse_instant(until, "to") or utcnow()
    start = parse_instant(since, "from") or end - dt.timedelta(days=days)
    _in_order(start, end)
    return start, end


async def _renewals(session: AsyncSession, since: str | None, until: str | None) -> RenewalsReport:
    start, end = report_range(since, until)
    return RenewalsReport(start, end, await renewals_report(session, start, end))


class ClaimCosts(msgspec.Struct, frozen=True):
    since: dt.datetime
    until: dt.datetime
    data: list[ClaimCostLine]
    totals: list[Money]  # per currency


class LossRatioReport(msgspec.Struct, frozen=True):
    since: dt.datetime
    until: dt.datetime
    data: list[LossRatio]


CLAIM_COST_COLUMNS = (
    "occurred_at",
    "claim_id",
    "contract_id",
    "plan_code",
    "servicer_id",
    "method",
    "cost_minor",
    "cost",
    "currency",
)
LOSS_RATIO_COLUMNS = (
    "month",
    "plan_code",
    "currency",
    "earned_minor",
    "claim_cost_minor",
    "earned",
    "claim_cost",
    "loss_ratio",
)


async def _claim_costs(
    session: AsyncSession, since: str | None, until: str | None, currency: str | None
) -> ClaimCosts:
    start, end = report_range(since, until)
    lines = await claim_costs(session, start, end, currency)
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.cost.currency] = totals.get(line.cost.currency, 0) + line.cost.amount
    return ClaimCosts(start, end, lines, [Money(amount, c) for c, amount in sorted(totals.items())])


def csv_stream(bom: bool, columns: tuple[str, ...], rows: list[list[object]]) -> Stream:
    async def lines() -> AsyncIterator[str]:
        yield ("\ufeff" if bom else "") + ",".join(columns) + "\r\n"
        for row in rows:
            out = io.StringIO()
            csv.writer(out, lineterminator="\r\n").writerow(row)
            yield out.getvalue()

    return Stream(lines(), media_type="text/csv; charset=utf-8")


class FinanceController(Controller):
    path = "/v1/finance"
    tags = ["finance"]
    guards = [access_guard]
    opt = {"access": frozenset({Scope.FINANCE, Scope.ADMIN})}

    @get(
        "/ledger",
        summary="Every money movement, oldest first, a page at a time",
        responses=problem_responses(),
    )
    async def ledger(
        self,
        db_session: NamedDependency[AsyncSession],
        since: Since = None,
        until: Until = None,
        currency: Currency = None,
        contract_id: ContractId = None,
        cursor: Annotated[str | None, QueryParameter(max_length=20, required=False)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000, required=False)] = 100,
    ) -> LedgerPage:
        rows = await ledger_page(
            db_session,
            _filter(since, until, currency, contract_id),
            after_id=_cursor(cursor),
            limit=limit + 1,
        )
        page = rows[:limit]
        data = [
            LedgerEntry(
                r.id,
                r.occurred_at,
                r.kind,
                Money(r.amount, r.currency),
                Money(r.amount, r.currency).decimal_text(),
                r.contract_id,
                r.period_start,
                r.period_end,
                r.stripe_payment_intent,
                r.stripe_charge,
                r.stripe_invoice,
                r.stripe_refund,
                r.stripe_dispute,
                r.stripe_balance_transaction,
            )
            for r in page
        ]
        return LedgerPage(data, str(page[-1].id) if len(rows) > limit else None)

    @get(
        "/ledger.csv",
        summary="The ledger as CSV (amounts in minor units and as decimals)",
        media_type="text/csv",
        responses=problem_responses(),
    )
    async def ledger_csv(
        self,
        services: Injected[Services],
        since: Since = None,
        until: Until = None,
        currency: Currency = None,
        contract_id: ContractId = None,
        bom: Bom = False,
    ) -> Stream:
        where = _filter(since, until, currency, contract_id)

        async def lines() -> AsyncIterator[str]:
            yield csv_header(bom)
            async with services.db.readers() as session:
                async for row in ledger_rows(session, where):
                    yield csv_line(row)

        return Stream(
            lines(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="ledger.csv"'},
        )

    @get(
        "/renewals",
        summary="Renewals per month, currency and plan: due, renewed, failed, recovered, lapsed, cancelled",
        responses=problem_responses(),
    )
    async def renewals(
        self, db_session: NamedDependency[AsyncSession], since: Since = None, until: Until = None
    ) -> RenewalsReport:
        return await _renewals(db_session, since, until)

    @get(
        "/renewals.csv",
        summary="The renewals report as CSV",
        media_type="text/csv",
        responses=problem_responses(),
    )
    async def renewals_csv(
        self,
        db_session: NamedDependency[AsyncSession],
        since: Since = None,
        until: Until = None,
        bom: Bom = False,
    ) -> Stream:
        report = await _renewals(db_session, since, until)
        fields = RenewalLine.__struct_fields__
        return csv_stream(bom, fields, [[getattr(line, f) for f in fields] for line in report.data])

    @get(
        "/reconciliation",
        summary="The ledger against Stripe's balance transactions: matched, missing either side, mismatches",
        responses=problem_responses(502),
    )
    async def reconciliation(
        self, services: Injected[Services], since: Since = None, until: Until = None
    ) -> Reconciliation:
        start, end = report_range(since, until, days=30)
        async with services.db.sessions() as session, session.begin():  # a cursor streams the ledger
            ledger = await ledger_of(session, start, end)
        return await reconcile(ledger, services.gateway, start, end)  # no transaction held across Stripe

    @get(
        "/claims-cost",
        summary="What claims cost: each claim_cost of the ledger, with its claim, plan and servicer",
        responses=problem_responses(),
    )
    async def claims_cost(
        self,
        db_session: NamedDependency[AsyncSession],
        since: Since = None,
        until: Until = None,
        currency: Currency = None,
    ) -> ClaimCosts:
        return await _claim_costs(db_session, since, until, currency)

    @get(
        "/claims-cost.csv",
        summary="What claims cost, as CSV",
        media_type="text/csv",
        responses=problem_responses(),
    )
    async def claims_cost_csv(
        self,
        db_session: NamedDependency[AsyncSession],
        since: Since = None,
        until: Until = None,
        currency: Currency = None,
        bom: Bom = False,
    ) -> Stream:
        report = await _claim_costs(db_session, since, until, currency)
        rows: list[list[object]] = [
            [
                line.occurred_at.isoformat().replace("+00:00", "Z"),
                line.claim_id or "",
                line.contract_id or "",
                line.plan_code or "",
                line.servicer_id or "",
                line.method,
                line.cost.amount,
                line.cost.decimal_text(),
                line.cost.currency,
            ]
            for line in report.data
        ]
        return csv_stream(bom, CLAIM_COST_COLUMNS, rows)

    @get(
        "/loss-ratio",
        summary="Per plan, month and currency: revenue earned, what claims cost, and their ratio",
        responses=problem_responses(),
    )
    async def loss_ratio(
        self, db_session: NamedDependency[AsyncSession], since: Since = None, until: Until = None
    ) -> LossRatioReport:
        start, end = report_range(since, until)
        return LossRatioReport(start, end, await loss_ratio_report(db_session, start, end))

    @get(
        "/loss-ratio.csv",
        summary="The loss ratio, as CSV",
        media_type="text/csv",
        responses=problem_responses(),
    )
    async def loss_ratio_csv(
        self,
        db_session: NamedDependency[AsyncSession],
        since: Since = None,
        until: Until = None,
        bom: Bom = False,
    ) -> Stream:
        start, end = report_range(since, until)
        rows: list[list[object]] = [
            [
                line.month.isoformat()[:7],
                line.plan_code,
                line.currency,
                line.earned,
                line.claim_cost,
                Money(line.earned, line.currency).decimal_text(),
                Money(line.claim_cost, line.currency).decimal_text(),
                "" if line.loss_ratio is None else f"{line.loss_ratio:.4f}",
            ]
            for line in await loss_ratio_report(db_session, start, end)
        ]
        return csv_stream(bom, LOSS_RATIO_COLUMNS, rows)

    @get(
        "/deferred-revenue",
        summary="Recognized and deferred revenue per currency, as of an instant",
        responses=problem_responses(),
    )
    async def deferred_revenue(
        self,
        db_session: NamedDependency[AsyncSession],
        as_of: AsOf = None,
        currency: Currency = None,
    ) -> DeferredRevenue:
        return await _deferred(db_session, parse_instant(as_of, "as_of") or utcnow(), currency)

    @get(
        "/deferred-revenue.csv",
        summary="Deferred revenue as CSV",
        media_type="text/csv",
        responses=problem_responses(),
    )
    async def deferred_revenue_csv(
        self,
        db_session: NamedDependency[AsyncSession],
        as_of: AsOf = None,
        currency: Currency = None,
        bom: Bom = False,
    ) -> Stream:
        report = await _deferred(db_session, parse_instant(as_of, "as_of") or utcnow(), currency)

        async def lines() -> AsyncIterator[str]:
            yield ("\ufeff" if bom else "") + ",".join(REVENUE_COLUMNS) + "\r\n"
            for p in report.data:
                values = (p.collected, p.recognized, p.deferred)
                yield (
                    ",".join(
                        [
                            report.as_of.isoformat().replace("+00:00", "Z"),
                            p.currency,
                            *(str(m.amount) for m in values),
                            *(m.decimal_text() for m in values),
                        ]
                    )
                    + "\r\n"
                )

        return Stream(lines(), media_type="text/csv; charset=utf-8")
