"""Published plan versions: one in-memory catalog per process, and the queries behind it."""

from __future__ import annotations

from enum import StrEnum

import msgspec
from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from entitlements.catalog import Plan, decode_plan, encode_plan
from entitlements.store.base import utcnow
from entitlements.store.statements import Statements
from entitlements.store.tables import PlanRow
from entitlements.terms import RenderedTerms, render_all

# Published versions never change, so a decoded plan (and its rendered terms) can be kept for
# the life of the process.
_published: dict[tuple[str, int], Plan] = {}
_terms: dict[tuple[str, int], RenderedTerms] = {}
plans: Table = PlanRow.__table__  # type: ignore[assignment]
_VERSION = select(plans.c.code, plans.c.version, plans.c.digest, plans.c.definition).where(
    plans.c.code == bindparam("code"), plans.c.version == bindparam("version")
)


def _plan(row: PlanRow) -> Plan:
    return plan_from(row.code, row.version, row.digest, row.definition)


def plan_from(code: str, version: int, digest: str, definition: str) -> Plan:
    """A published version from its row (decoded once per process)."""
    plan = _published.get((code, version))
    if plan is None or plan.digest() != digest:
        plan = _published[(code, version)] = decode_plan(definition)
    return plan


def known_plan_version(code: str, version: int) -> Plan | None:
    """A published plan version this process has read before (none changes once published)."""
    return _published.get((code, version))


async def plan_version(run: Statements, code: str, version: int) -> Plan | None:
    """A published plan version: from memory once this process has read it, else from the
    database, so a version another process published is found."""
    known = _published.get((code, version))
    if known is not None:
        return known
    row = await run.row(_VERSION, code=code, version=version)
    return None if row is None else plan_from(*row)


class PublishOutcome(StrEnum):
    PUBLISHED = "published"
    UNCHANGED = "unchanged"
    REFUSED = "refused"
    WITHHELD = "withheld"  # valid, but not published because another plan in the file was refused


class PublishResult(msgspec.Struct, frozen=True):
    code: str
    version: int
    outcome: PublishOutcome
    reason: str | None = None


class PlanRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def terms(self, plan: Plan) -> RenderedTerms:
        """The clauses stored when this version was published (read once per process); a
        version published before terms were rendered gets them rendered now."""
        key = (plan.code, plan.version)
        if key not in _terms:
            version = (PlanRow.code == plan.code) & (PlanRow.version == plan.version)
            stored = await self.session.scalar(select(PlanRow.rendered_terms).where(version))
            rendered = stored and msgspec.json.decode(stored, type=RenderedTerms)
            _terms[key] = rendered or render_all(plan)
        return _terms[key]

    async def latest(self) -> list[Plan]:
        """The newest version of every plan code, ordered by code."""
        newest = (
            select(PlanRow.code, func.max(PlanRow.version).label("version")).group_by(PlanRow.code).subquery()
        )
        rows = await self.session.scalars(
            select(PlanRow)
            .options(defer(PlanRow.rendered_terms))
            .join(newest, (PlanRow.code == newest.c.code) & (PlanRow.version == newest.c.version))
            .order_by(PlanRow.code)
        )
        return [_plan(row) for row in rows]

    async def newest(self, code: str) -> Plan | None:
        """The newest version of this plan code."""
        row = await self.session.scalar(
            select(PlanRow)
            .options(defer(PlanRow.rendered_terms))
            .where(PlanRow.code == code)
            .order_by(PlanRow.version.desc())
            .limit(1)
        )
        return None if row is None else _plan(row)

    async def publish(self, plans: list[Plan]) -> list[PublishResult]:
        """Publish new versions; refuse every change to a published one. All or nothing."""
        codes = {plan.code for plan in plans}
        existing = {
            (row.code, row.version): row
            for row in await self.session.scalars(
                select(PlanRow).options(defer(PlanRow.rendered_terms)).where(PlanRow.code.in_(codes))
            )
        }
        newest: dict[str, int] = {}
        for code, version in existing:
            newest[code] = max(version, newest.get(code, 0))
        results: list[PublishResult] = []
        for plan in sorted(plans, key=lambda p: (p.code, p.version)):
            row = existing.get((plan.code, plan.version))
            if row is not None:
                # The same definition: the digest, or (for a version stored before a field with a
                # default was added to plans) the same plan once the stored one is read today.
                if row.digest == plan.digest() or decode_plan(row.definition) == plan:
                    results.append(PublishResult(plan.code, plan.version, PublishOutcome.UNCHANGED))
                else:
                    results.append(
                        PublishResult(
                            plan.code,
                            plan.version,
                            PublishOutcome.REFUSED,
                            f"version {plan.version} is published and cannot change; "
                            f"publish version {newest[plan.code] + 1} instead",
                        )
                    )
            elif plan.version <= newest.get(plan.code, 0):
                results.append(
                    PublishResult(
                        plan.code,
                        plan.version,
                        PublishOutcome.REFUSED,
                        f"version {newest[plan.code]} is already the newest",
                    )
                )
            else:
                newest[plan.code] = plan.version
                results.append(PublishResult(plan.code, plan.version, PublishOutcome.PUBLISHED))
        if any(r.outcome is PublishOutcome.REFUSED for r in results):
            return [
                PublishResult(r.code, r.version, PublishOutcome.WITHHELD)
                if r.outcome is PublishOutcome.PUBLISHED
                else r
                for r in results
            ]
        now = utcnow()
        by_key = {(p.code, p.version): p for p in plans}
        for result in results:
            if result.outcome is PublishOutcome.PUBLISHED:
                plan = by_key[(result.code, result.version)]
                self.session.add(
                    PlanRow(
                        code=plan.code,
                        version=plan.version,
                        active=plan.active,
                        digest=plan.digest(),
                        definition=encode_plan(plan).decode(),
                        rendered_terms=msgspec.json.encode(render_all(plan)).decode(),
                        published_at=now,
                    )
                )
        await self.session.flush()
        return results
