"""Included services: a support channel redeems one (idempotent by its reference), voids one,
and reads them; what is left of each is in every check."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import access_guard, actor
from api.keys import Scope
from api.routes.claims import AgentHeader
from api.routes.contracts import POST_PROBLEMS, READ_PROBLEMS, History, HistoryEntry
from api.routes.people import Id
from api.views import IdempotencyKey
from entitlements.benefits import service
from entitlements.benefits.rules import RedemptionStatus
from entitlements.catalog import BenefitKind, SupportChannel
from entitlements.claims.service import agent_name
from entitlements.clock import utcnow
from entitlements.money import Money

RedemptionCursor = Annotated[str | None, Parameter(pattern=r"^rdm_[0-9a-f]{20}$", required=False)]
StatusFilter = Annotated[RedemptionStatus | None, Parameter(required=False)]
ContractFilter = Annotated[str | None, Parameter(max_length=64, required=False)]
PageSize = Annotated[int, Parameter(ge=1, le=service.PAGE, required=False)]


class VisitBrief(msgspec.Struct, frozen=True):
    """The service order of a service that needs a visit."""

    id: str
    status: str
    servicer_id: str | None


class RedemptionView(msgspec.Struct, frozen=True):
    id: str
    reference: str
    contract_id: str
    product_id: str
    kind: BenefitKind
    status: RedemptionStatus
    fee: Money  # what the customer pays for it (zero: included)
    channel: SupportChannel | None
    note: str | None
    redeemed_at: dt.datetime
    redeemed_by: str | None
    voided_at: dt.datetime | None
    void_reason: str | None
    service_order: VisitBrief | None

    @classmethod
    def of(cls, row: Any, order: Any = None) -> RedemptionView:
        return cls(
            id=row.id,
            reference=row.reference,
            contract_id=row.contract_id,
            product_id=row.product_id,
            kind=BenefitKind(row.kind),
            status=RedemptionStatus(row.status),
            fee=Money(row.fee, row.currency),
            channel=SupportChannel(row.channel) if row.channel else None,
            note=row.note,
            redeemed_at=row.redeemed_at,
            redeemed_by=row.redeemed_by,
            voided_at=row.voided_at,
            void_reason=row.void_reason,
            service_order=VisitBrief(order.id, order.status, order.servicer_id) if order else None,
        )


class RedemptionPage(msgspec.Struct, frozen=True):
    data: list[RedemptionView]
    next_cursor: str | None


async def _view(session: AsyncSession, row: Any) -> RedemptionView:
    return RedemptionView.of(row, await service.visit_of(session, row.id))


class BenefitController(Controller):
    path = "/v1/benefits/redemptions"
    tags = ["benefits"]
    guards = [access_guard]
    opt = {"access": frozenset({Scope.SUPPORT, Scope.ADMIN})}

    @post(
        summary="Redeem a service the plan includes (installation, a tech-support session, …): counted "
        "at once, idempotent by reference; one that needs a visit opens a service order",
        responses=POST_PROBLEMS,
    )
    async def redeem(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[service.RedemptionInput],
        agent: AgentHeader = None,
        idempotency_key: IdempotencyKey = None,
    ) -> RedemptionView:
        row = await service.redeem(
            db_session, data, actor=actor(request), agent=agent_name(agent), now=utcnow()
        )
        return await _view(db_session, row)

    @get(summary="Redemptions, oldest first", responses=READ_PROBLEMS)
    async def list_redemptions(
        self,
        db_session: NamedDependency[AsyncSession],
        status: StatusFilter = None,
        contract_id: ContractFilter = None,
        cursor: RedemptionCursor = None,
        limit: PageSize = service.PAGE,
    ) -> RedemptionPage:
        rows, next_cursor = await service.list_redemptions(
            db_session, contract_id=contract_id, status=status, cursor=cursor, limit=limit
        )
        return RedemptionPage([await _view(db_session, r) for r in rows], next_cursor)

    @get("/{redemption_id:str}", summary="One redemption", responses=READ_PROBLEMS)
    async def get_redemption(
        self, db_session: NamedDependency[AsyncSession], redemption_id: Id
    ) -> RedemptionView:
        return await _view(db_session, await service.get_redemption(db_session, redemption_id))

    @get(
        "/{redemption_id:str}/history",
        summary="Every move of the redemption, with its agent",
        responses=READ_PROBLEMS,
    )
    async def redemption_history(
        self, db_session: NamedDependency[AsyncSession], redemption_id: Id
    ) -> History:
        rows = await service.redemption_history(db_session, redemption_id)
        return History([HistoryEntry.of(r) for r in rows])

    @post(
        "/{redemption_id:str}/void",
        summary="Void a redemption, giving its use back (a visit no servicer accepted is withdrawn)",
        responses=POST_PROBLEMS,
        status_code=200,
    )
    async def void(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        redemption_id: Id,
        data: JSONBody[service.VoidInput],
        agent: AgentHeader = None,
        idempotency_key: IdempotencyKey = None,
    ) -> RedemptionView:
        row = await service.void(
            db_session, redemption_id, data, actor=actor(request), agent=agent_name(agent), now=utcnow()
        )
        return await _view(db_session, row)
