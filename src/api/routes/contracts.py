"""Contracts (sold plans): their terms, periods and history."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import access_guard, actor
from api.dependencies import Injected, Services
from api.errors import problem_responses
from api.keys import MERCHANT_SCOPES, Scope
from api.routes.people import Id
from api.views import IdempotencyKey, Instant, supported_instant
from entitlements.clock import utcnow
from entitlements.contracts import service as use_cases
from entitlements.coverage import ContractStatus, Period
from entitlements.money import Money

POST_PROBLEMS = problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429)
READ_PROBLEMS = problem_responses(400, 401, 403, 404, 429)
Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class PeriodView(msgspec.Struct, frozen=True):
    start: dt.datetime
    end: dt.datetime


class ContractView(msgspec.Struct, frozen=True):
    id: str
    customer_id: str
    product_id: str
    plan_code: str
    plan_version: int
    price: Money
    billing: str
    status: ContractStatus
    sold_at: dt.datetime
    coverage_starts_at: dt.datetime
    waiting_until: dt.datetime | None
    grace_until: dt.datetime | None
    ended_at: dt.datetime | None
    coverage_periods: list[PeriodView]

    @classmethod
    def of(cls, row: Any, periods: list[Period]) -> ContractView:
        return cls(
            id=row.id,
            customer_id=row.customer_id,
            product_id=row.product_id,
            plan_code=row.plan_code,
            plan_version=row.plan_version,
            price=Money(row.price_amount, row.currency),
            billing=row.billing,
            status=ContractStatus(row.status),
            sold_at=row.sold_at,
            coverage_starts_at=row.coverage_starts_at,
            waiting_until=row.waiting_until,
            grace_until=row.grace_until,
            ended_at=row.ended_at,
            # A period paid for but cut away whole by an ending is kept (its payment's record)
            # with no length: it covered nothing, so it is not shown as cover.
            coverage_periods=[PeriodView(p.start, p.end) for p in periods if p.end > p.start],
        )


async def contract_view(session: AsyncSession, row: Any) -> ContractView:
    return ContractView.of(row, await use_cases.contract_periods(session, row.id))


class OpenContract(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    offer_token: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    customer_id: Ref
    product_id: Ref


class Transfer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    customer_id: Ref


class Lifecycle(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A lifecycle event, applied once per reference (billing applies these from Stripe)."""

    action: use_cases.LifecycleAction
    reference: Ref
    at: Instant | None = None


class HistoryEntry(msgspec.Struct, frozen=True):
    at: dt.datetime
    entity: str
    entity_id: str
    action: str
    actor: str
    changes: dict[str, Any]

    @classmethod
    def of(cls, row: Any) -> HistoryEntry:
        return cls(row.at, row.entity, row.entity_id, row.action, row.actor, msgspec.json.decode(row.changes))


class History(msgspec.Struct, frozen=True):
    data: list[HistoryEntry]


class ContractController(Controller):
    path = "/v1/contracts"
    tags = ["contracts"]
    guards = [access_guard]

    @post(
        summary="Open a pending contract from a signed offer",
        responses=POST_PROBLEMS,
        opt={"access": frozenset({Scope.CHECKOUT, Scope.ADMIN})},
    )
    async def open_contract(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[OpenContract],
        idempotency_key: IdempotencyKey = None,
    ) -> ContractView:
        row = await use_cases.open_contract(
            db_session,
            offer_token=data.offer_token,
            customer_id=data.customer_id,
            product_id=data.product_id,
            keyring=services.settings.offer_keys,
            now=utcnow(),
            actor=actor(request),
        )
        return await contract_view(db_session, row)

    @get(
        "/{contract_id:str}",
        summary="One contract with its coverage periods",
        responses=READ_PROBLEMS,
        opt={"access": frozenset(MERCHANT_SCOPES)},
    )
    async def get_contract(self, db_session: NamedDependency[AsyncSession], contract_id: Id) -> ContractView:
        return await contract_view(db_session, await use_cases.contract(db_session, contract_id))

    @post(
        "/{contract_id:str}/lifecycle",
        summary="Apply a payment, past-due, lapse, cancel, expire or abandon event (admin)",
        description="Idempotent by `reference`: billing applies Stripe events through the same operations.",
        responses=POST_PROBLEMS,
        status_code=200,
        opt={"access": frozenset({Scope.ADMIN})},
    )
    async def apply_lifecycle(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        contract_id: Id,
        data: JSONBody[Lifecycle],
        idempotency_key: IdempotencyKey = None,
    ) -> ContractView:
        at = utcnow() if data.at is None else supported_instant(data.at, "at")
        row = await use_cases.apply_lifecycle(
            db_session, contract_id, data.action, reference=data.reference, at=at, actor=actor(request)
        )
        return await contract_view(db_session, row)

    @post(
        "/{contract_id:str}/transfer",
        summary="Transfer the contract and its product to another customer",
        responses=POST_PROBLEMS,
        status_code=200,
        opt={"access": frozenset({Scope.SUPPORT, Scope.ADMIN})},
    )
    async def transfer(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        contract_id: Id,
        data: JSONBody[Transfer],
        idempotency_key: IdempotencyKey = None,
    ) -> ContractView:
        row = await use_cases.transfer_contract(
            db_session, contract_id, customer_id=data.customer_id, actor=actor(request)
        )
        return await contract_view(db_session, row)

    @get(
        "/{contract_id:str}/history",
        summary="Every change to the contract and its claims",
        responses=READ_PROBLEMS,
        opt={"access": frozenset({Scope.SUPPORT, Scope.ADMIN})},
    )
    async def history(self, db_session: NamedDependency[AsyncSession], contract_id: Id) -> History:
        contract = await use_cases.contract(db_session, contract_id)
        rows = await use_cases.history(db_session, [contract.id])
        return History([HistoryEntry.of(r) for r in rows])
