"""Reports for support: customers' satisfaction per month, plan and servicer (JSON and CSV)."""

from __future__ import annotations

import datetime as dt

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import access_guard
from api.errors import problem_responses
from api.keys import Scope
from api.routes.finance import Bom, Since, Until, csv_stream, report_range
from entitlements.satisfaction.rules import MonthLine
from entitlements.satisfaction.service import satisfaction_report


class SatisfactionReport(msgspec.Struct, frozen=True):
    since: dt.datetime
    until: dt.datetime
    data: list[MonthLine]


async def _report(session: AsyncSession, since: str | None, until: str | None) -> SatisfactionReport:
    start, end = report_range(since, until)
    return SatisfactionReport(start, end, await satisfaction_report(session, start, end))


class ReportController(Controller):
    path = "/v1/reports"
    tags = ["reports"]
    guards = [access_guard]
    opt = {"access": frozenset({Scope.SUPPORT, Scope.ADMIN})}

    @get(
        "/satisfaction",
        summary="Customers' ratings after a repair or a service, per month (UTC), plan and servicer",
        responses=problem_responses(),
    )
    async def satisfaction(
        self, db_session: NamedDependency[AsyncSession], since: Since = None, until: Until = None
    ) -> SatisfactionReport:
        return await _report(db_session, since, until)

    @get(
        "/satisfaction.csv",
        summary="Customers' ratings per month, plan and servicer, as CSV",
        media_type="text/csv",
        responses=problem_responses(),
    )
    async def satisfaction_csv(
        self,
        db_session: NamedDependency[AsyncSession],
        since: Since = None,
        until: Until = None,
        bom: Bom = False,
    ) -> Stream:
        report = await _report(db_session, since, until)
        columns = (
            "month",
            "plan_code",
            "servicer_id",
            "answers",
            "average",
            *(f"rated_{r}" for r in range(1, 6)),
        )
        rows: list[list[object]] = [
            [
                line.month.isoformat(),
                line.plan_code,
                line.servicer_id or "",
                line.answers,
                line.average,
                *line.ratings,
            ]
            for line in report.data
        ]
        return csv_stream(bom, columns, rows)
