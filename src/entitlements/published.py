"""The published catalog as the HTTP layer reads it: the newest version of each plan, one plan's
newest version, and the terms each version was published with."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from entitlements.catalog import Plan
from entitlements.store.plans import PlanRepository
from entitlements.terms import RenderedTerms


async def latest(session: AsyncSession) -> list[Plan]:
    return await PlanRepository(session).latest()


async def newest(session: AsyncSession, code: str) -> Plan | None:
    return await PlanRepository(session).newest(code)


async def terms(session: AsyncSession, plan: Plan) -> RenderedTerms:
    """The clauses stored when this version was published, in every language and currency."""
    return await PlanRepository(session).terms(plan)
