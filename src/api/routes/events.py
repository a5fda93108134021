"""Outbound events: the webhook endpoints that receive them (admin), their delivery logs, and the
events themselves to pull (`GET /v1/events`, 30 days) or deliver again."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import access_guard
from api.dependencies import Injected, Services
from api.endpoint_urls import UnsafeUrl, check_url, new_secret
from api.errors import problem_responses
from api.keys import Scope
from api.routes.people import Id
from api.settings import Settings
from api.views import IdempotencyKey
from entitlements import endpoints as service
from entitlements.catalog import LOCALES
from entitlements.errors import InvalidInput

TypeFilter = Annotated[
    str | None, QueryParameter(pattern=r"^[a-z_]+\.[a-z_]+$", max_length=64, required=False)
]
IdFilter = Annotated[str | None, QueryParameter(max_length=64, required=False)]
EventCursor = Annotated[str | None, QueryParameter(pattern=r"^evt_[0-9a-f]{24}$", required=False)]
EventType = Annotated[str, msgspec.Meta(pattern=r"^[a-z_]+\.(\*|[a-z_]+)$", max_length=64)]
Url = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s]{1,2000}$")]
Locale = Annotated[str, msgspec.Meta(max_length=8)]


class EndpointInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: Url
    event_types: Annotated[list[EventType], msgspec.Meta(max_length=50)] = []  # empty: every event
    locale: Locale | None = None
    description: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class EndpointPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: Url | None = None
    event_types: Annotated[list[EventType], msgspec.Meta(max_length=50)] | None = None
    locale: Locale | None = None
    description: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    enabled: bool | None = None


class EndpointView(msgspec.Struct, frozen=True):
    id: str
    url: str
    event_types: list[str]
    locale: str | None
    description: str | None
    enabled: bool
    disabled_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    secret: str | None = None  # shown when made: on creation and on rotation

    @classmethod
    def of(cls, row: Any, *, secret: str | None = None) -> EndpointView:
        return cls(
            row.id,
            row.url,
            list(row.event_types),
            row.locale,
            row.description,
            row.enabled,
            row.disabled_reason,
            row.created_at,
            row.updated_at,
            secret,
        )


class EndpointList(msgspec.Struct, frozen=True):
    data: list[EndpointView]


class DeliveryView(msgspec.Struct, frozen=True):
    id: int
    event_id: str
    attempt: int
    status: str  # delivered | failed | gone
    http_status: int | None
    latency_ms: int | None
    response_excerpt: str | None
    error: str | None
    attempted_at: dt.datetime


class DeliveryPage(msgspec.Struct, frozen=True):
    data: list[DeliveryView]
    next_cursor: str | None


class EventView(msgspec.Struct, frozen=True):
    id: str
    type: str
    product_id: str | None
    contract_id: str | None
    sequence: int | None
    data: dict[str, Any]
    created_at: dt.datetime

    @classmethod
    def of(cls, row: Any) -> EventView:
        data = msgspec.json.decode(row.data)
        return cls(row.id, row.type, row.product_id, row.contract_id, row.sequence, data, row.created_at)


class EventPage(msgspec.Struct, frozen=True):
    data: list[EventView]
    next_cursor: str | None


class Redelivery(msgspec.Struct, frozen=True):
    event_id: str
    queued: int


async def _checked(settings: Settings, url: str, event_types: list[str], locale: str | None) -> None:
    service.check_event_types(event_types)
    if locale is not None and locale not in LOCALES:
        raise InvalidInput(f"unsupported locale; use one of {list(LOCALES)}", field="locale")
    try:
        await check_url(url, allow_loopback=not settings.production)
    except UnsafeUrl as exc:
        raise InvalidInput(str(exc), field="url") from None


class WebhookEndpointController(Controller):
    path = "/v1/webhook-endpoints"
    tags = ["events"]
    guards = [access_guard]
    opt = {"access": frozenset({Scope.ADMIN})}

    @post(
        summary="Register a webhook endpoint (its signing secret is shown once)",
        responses=problem_responses(409, 413, 415),
    )
    async def create(
        self,
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[EndpointInput],
        idempotency_key: IdempotencyKey = None,
    ) -> EndpointView:
        await _checked(services.settings, data.url, data.event_types, data.locale)
        secret = new_secret()
        row = await service.register(
            db_session,
            url=data.url,
            event_types=data.event_types,
            locale=data.locale,
            description=data.description,
            secret=secret,
        )
        return EndpointView.of(row, secret=secret)

    @get(summary="The webhook endpoints", responses=problem_responses())
    async def list_endpoints(self, db_session: NamedDependency[AsyncSession]) -> EndpointList:
        return EndpointList([EndpointView.of(r) for r in await service.endpoints(db_session)])

    @get("/{endpoint_id:str}", summary="One webhook endpoint", responses=problem_responses(404))
    async def get_endpoint(self, db_session: NamedDependency[AsyncSession], endpoint_id: Id) -> EndpointView:
        return EndpointView.of(await service.endpoint(db_session, endpoint_id))

    @patch(
        "/{endpoint_id:str}",
        summary="Change a webhook endpoint: URL, event types, locale, enabled",
        responses=problem_responses(404, 413, 415),
    )
    async def update_endpoint(
        self,
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        endpoint_id: Id,
        data: JSONBody[EndpointPatch],
    ) -> EndpointView:
        row = await service.endpoint(db_session, endpoint_id)
        url = data.url if data.url is not None else row.url
        event_types = data.event_types if data.event_types is not None else list(row.event_types)
        locale = data.locale if data.locale is not None else row.locale
        await _checked(services.settings, url, event_types, locale)
        given = {"description": data.description, "enabled": data.enabled}
        changes = {name: value for name, value in given.items() if value is not None}
        row = await service.change(
            db_session, row, url=url, event_types=event_types, locale=locale, **changes
        )
        return EndpointView.of(row)

    @delete(
        "/{endpoint_id:str}",
        summary="Remove a webhook endpoint and its delivery log",
        responses=problem_responses(404),
    )
    async def delete_endpoint(self, db_session: NamedDependency[AsyncSession], endpoint_id: Id) -> None:
        await service.remove(db_session, endpoint_id)

    @post(
        "/{endpoint_id:str}/rotate-secret",
        summary="A new signing secret; the old one still signs for 24 hours",
        responses=problem_responses(404, 413, 415),
        status_code=200,
    )
    async def rotate_secret(
        self,
        db_session: NamedDependency[AsyncSession],
        endpoint_id: Id,
        idempotency_key: IdempotencyKey = None,
    ) -> EndpointView:
        secret = new_secret()
        return EndpointView.of(await service.rotate(db_session, endpoint_id, secret), secret=secret)

    @get(
        "/{endpoint_id:str}/deliveries",
        summary="The endpoint's delivery log: every attempt, newest first",
        responses=problem_responses(404),
    )
    async def deliveries(
        self,
        db_session: NamedDependency[AsyncSession],
        endpoint_id: Id,
        cursor: Annotated[str | None, QueryParameter(pattern=r"^[0-9]{1,18}$", required=False)] = None,
    ) -> DeliveryPage:
        rows, next_cursor = await service.deliveries(
            db_session, endpoint_id, int(cursor) if cursor is not None else None
        )
        views = [
            DeliveryView(
                r.id,
                r.event_id,
                r.attempt,
                r.status,
                r.http_status,
                r.latency_ms,
                r.response_excerpt,
                r.error,
                r.attempted_at,
            )
            for r in rows
        ]
        return DeliveryPage(views, next_cursor)


class EventController(Controller):
    path = "/v1/events"
    tags = ["events"]
    guards = [access_guard]
    opt = {"access": frozenset({Scope.SUPPORT, Scope.ADMIN})}

    @get(
        summary="Events of the last 30 days, newest first (the pull alternative to webhooks)",
        responses=problem_responses(),
    )
    async def list_events(
        self,
        db_session: NamedDependency[AsyncSession],
        type: TypeFilter = None,
        product_id: IdFilter = None,
        contract_id: IdFilter = None,
        cursor: EventCursor = None,
    ) -> EventPage:
        rows, next_cursor = await service.events(
            db_session, type=type, product_id=product_id, contract_id=contract_id, cursor=cursor
        )
        return EventPage([EventView.of(r) for r in rows], next_cursor)

    @get("/{event_id:str}", summary="One event", responses=problem_responses(404))
    async def get_event(self, db_session: NamedDependency[AsyncSession], event_id: Id) -> EventView:
        return EventView.of(await service.event(db_session, event_id))

    @post(
        "/{event_id:str}/redeliver",
        summary="Deliver the event again to every enabled endpoint that wants it (admin)",
        responses=problem_responses(404, 413, 415),
        status_code=202,
        opt={"access": frozenset({Scope.ADMIN})},
    )
    async def redeliver(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        event_id: Id,
        idempotency_key: IdempotencyKey = None,
    ) -> Redelivery:
        return Redelivery(event_id, await service.redeliver(db_session, event_id))
