"""Repair centres (servicers) and service orders. A servicer's key sees and moves only its own
orders and the offered ones it could take: any other order is a 404 to it."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import access_guard, actor, servicer_of
from api.dependencies import Injected, Services
from api.keys import IssuedKey, KeyKind, Scope, issue_key
from api.routes.claims import ReviewerHeader
from api.routes.contracts import POST_PROBLEMS, READ_PROBLEMS
from api.routes.people import Id
from api.views import IdempotencyKey
from billing.finance import claim_costs
from entitlements.claims.service import agent_name
from entitlements.clock import utcnow
from entitlements.money import Money
from entitlements.repairs import service
from entitlements.repairs.rules import OrderStatus

OrderCursor = Annotated[str | None, Parameter(pattern=r"^so_[0-9a-f]{20}$", required=False)]
StatusFilter = Annotated[OrderStatus | None, Parameter(required=False)]
PageSize = Annotated[int, Parameter(ge=1, le=service.PAGE, required=False)]


class ServicerView(msgspec.Struct, frozen=True):
    id: str
    name: str
    categories: list[str]
    countries: list[str]
    active: bool
    created_at: dt.datetime

    @classmethod
    def of(cls, row: Any) -> ServicerView:
        return cls(
            row.id,
            row.name,
            msgspec.json.decode(row.categories),
            msgspec.json.decode(row.countries),
            row.active,
            row.created_at,
        )


class ServicerList(msgspec.Struct, frozen=True):
    data: list[ServicerView]


class ServicerKeyInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class OrderView(msgspec.Struct, frozen=True):
    id: str
    # What the order does: an approved claim's repair, or the visit a redeemed service needs
    # (its kind in `incident_kind`: installation, maintenance_visit, …).
    claim_id: str | None
    redemption_id: str | None
    contract_id: str
    product_id: str
    servicer_id: str | None
    category: str
    country: str
    sku: str
    serial: str | None
    incident_kind: str
    incident_date: dt.date | None
    problem: str | None  # what the customer said happened
    status: OrderStatus
    payable: Money  # what the claim pays: an estimate above it waits for approval (a visit: none)
    estimate: dict[str, int] | None
    estimate_waits: bool  # for a person's approval before the repair may start
    estimate_approved_by: str | None
    cost: dict[str, int] | None
    note: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: Any) -> OrderView:
        estimate = msgspec.json.decode(row.estimate) if row.estimate else None
        waits = (
            estimate is not None
            and row.estimate_approved_by is None
            and row.status == OrderStatus.DIAGNOSED
            and sum(estimate.values()) > row.payable
        )
        return cls(
            id=row.id,
            claim_id=row.claim_id,
            redemption_id=row.redemption_id,
            contract_id=row.contract_id,
            product_id=row.product_id,
            servicer_id=row.servicer_id,
            category=row.category,
            country=row.country,
            sku=row.sku,
            serial=row.serial,
            incident_kind=row.incident_kind,
            incident_date=row.incident_date,
            problem=row.problem,
            status=OrderStatus(row.status),
            payable=Money(row.payable, row.currency),
            estimate=estimate,
            estimate_waits=waits,
            estimate_approved_by=row.estimate_approved_by,
            cost=msgspec.json.decode(row.cost) if row.cost else None,
            note=row.note,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class OrderPage(msgspec.Struct, frozen=True):
    data: list[OrderView]
    next_cursor: str | None


class AssignInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    servicer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class ServicerController(Controller):
    path = "/v1/servicers"
    tags = ["repairs"]
    guards = [access_guard]
    opt = {"access": frozenset({Scope.ADMIN})}

    @post(summary="Add a repair centre, with the categories and countries it serves", responses=POST_PROBLEMS)
    async def create_servicer(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[service.ServicerInput],
        idempotency_key: IdempotencyKey = None,
    ) -> ServicerView:
        row = await service.create_servicer(db_session, data, actor=actor(request), now=utcnow())
        return ServicerView.of(row)

    @get(summary="Every repair centre", responses=READ_PROBLEMS)
    async def list_servicers(self, db_session: NamedDependency[AsyncSession]) -> ServicerList:
        return ServicerList([ServicerView.of(r) for r in await service.list_servicers(db_session)])

    @get("/{servicer_id:str}", summary="One repair centre", responses=READ_PROBLEMS)
    async def get_servicer(self, db_session: NamedDependency[AsyncSession], servicer_id: Id) -> ServicerView:
        return ServicerView.of(await service.get_servicer(db_session, servicer_id))

    @post(
        "/{servicer_id:str}/keys",
        summary="A key for the repair centre (scope servicer, bound to it); shown once",
        responses=POST_PROBLEMS,
    )
    async def create_key(
        self,
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        servicer_id: Id,
        data: JSONBody[ServicerKeyInput],
        idempotency_key: IdempotencyKey = None,
    ) -> IssuedKey:
        servicer = await service.get_servicer(db_session, servicer_id)
        return await issue_key(
            db_session,
            kind=KeyKind.SECRET,
            name=data.name,
            scopes=[Scope.SERVICER],
            live=services.settings.production,
            servicer_id=servicer.id,
        )


class ServiceOrderController(Controller):
    path = "/v1/service-orders"
    tags = ["repairs"]
    guards = [access_guard]
    opt = {"access": frozenset({Scope.SUPPORT, Scope.ADMIN, Scope.SERVICER})}

    @get(
        summary="Service orders, oldest first: a servicer's own, and those offered to it",
        responses=READ_PROBLEMS,
    )
    async def list_orders(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        status: StatusFilter = None,
        cursor: OrderCursor = None,
        limit: PageSize = service.PAGE,
    ) -> OrderPage:
        rows, next_cursor = await service.list_orders(
            db_session, servicer_id=servicer_of(request), status=status, cursor=cursor, limit=limit
        )
        return OrderPage([OrderView.of(r) for r in rows], next_cursor)

    @get("/{order_id:str}", summary="One service order", responses=READ_PROBLEMS)
    async def get_order(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], order_id: Id
    ) -> OrderView:
        return OrderView.of(await service.get_order(db_session, order_id, servicer_id=servicer_of(request)))

    @post(
        "/{order_id:str}/accept",
        summary="Take an offered or assigned order (servicer): the first to accept an offered one wins",
        responses=POST_PROBLEMS,
        status_code=200,
        opt={"access": frozenset({Scope.SERVICER})},
    )
    async def accept_order(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        order_id: Id,
        idempotency_key: IdempotencyKey = None,
    ) -> OrderView:
        order = await service.accept_order(
            db_session, order_id, servicer_id=_servicer(request), actor=actor(request), now=utcnow()
        )
        return OrderView.of(order)

    @post(
        "/{order_id:str}/status",
        summary="Report the order's next step (servicer): received, diagnosed with an estimate, "
        "repair started, repaired with its cost, shipped, closed, or cannot repair",
        responses=POST_PROBLEMS,
        status_code=200,
        opt={"access": frozenset({Scope.SERVICER})},
    )
    async def report(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        order_id: Id,
        data: JSONBody[service.OrderReport],
        idempotency_key: IdempotencyKey = None,
    ) -> OrderView:
        order = await claim_costs.report_repair(
            db_session, order_id, data, servicer_id=_servicer(request), actor=actor(request), now=utcnow()
        )
        return OrderView.of(order)

    @post(
        "/{order_id:str}/assign",
        summary="Give an order no servicer has accepted to one that serves it (admin)",
        responses=POST_PROBLEMS,
        status_code=200,
        opt={"access": frozenset({Scope.ADMIN})},
    )
    async def assign_order(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        order_id: Id,
        data: JSONBody[AssignInput],
        idempotency_key: IdempotencyKey = None,
    ) -> OrderView:
        order = await service.assign_order(
            db_session, order_id, servicer_id=data.servicer_id, actor=actor(request), now=utcnow()
        )
        return OrderView.of(order)

    @post(
        "/{order_id:str}/approve-estimate",
        summary="Approve an estimate above what the claim pays, so the repair may start",
        responses=POST_PROBLEMS,
        status_code=200,
        opt={"access": frozenset({Scope.SUPPORT, Scope.ADMIN})},
    )
    async def approve_estimate(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        order_id: Id,
        agent: ReviewerHeader,
        idempotency_key: IdempotencyKey = None,
    ) -> OrderView:
        order = await service.approve_estimate(
            db_session, order_id, agent=agent_name(agent) or "", actor=actor(request), now=utcnow()
        )
        return OrderView.of(order)


def _servicer(request: Request[Any, Any, Any]) -> str:
    servicer_id = servicer_of(request)
    assert servicer_id is not None  # the guard let only servicer keys through
    return servicer_id
