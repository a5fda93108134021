"""Outbound events: the webhook endpoints that receive them (admin), their delivery logs, and the
events themselves to pull (`GET /v1/events`, 30 days) or deliver again."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Scope, access_guard
from api.deliveries import UnsafeUrl, check_url, new_secret
from api.errors import problem_responses
from api.routes.people import Id
from api.views import IdempotencyKey
from entitlements.catalog import LOCALES
from entitlements.clock import utcnow
from entitlements.errors import Conflict, InvalidInput, NotFound
from entitlements.services import new_id
from entitlements.store.outbox import DELIVER, EVENT_TYPES, Delivery, wants
from entitlements.store.tables import EventRow, WebhookDeliveryRow, WebhookEndpointRow
from entitlements.store.unit_of_work import commit, unit_of_work

MAX_ENDPOINTS = 25
RETENTION = dt.timedelta(days=30)
ROTATION = dt.timedelta(hours=24)  # the old secret still signs this long after a rotation
PAGE = 100

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
    def of(cls, row: WebhookEndpointRow, *, secret: str | None = None) -> EndpointView:
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
    def of(cls, row: EventRow) -> EventView:
        data = msgspec.json.decode(row.data)
        return cls(row.id, row.type, row.product_id, row.contract_id, row.sequence, data, row.created_at)


class EventPage(msgspec.Struct, frozen=True):
    data: list[EventView]
    next_cursor: str | None


class Redelivery(msgspec.Struct, frozen=True):
    event_id: str
    queued: int


async def _checked(state: State, url: str, event_types: list[str], locale: str | None) -> None:
    unknown = sorted({t for t in event_types if not t.endswith(".*") and t not in EVENT_TYPES})
    if unknown:
        raise InvalidInput(
            f"unknown event types {unknown}; see GET /v1/events' catalogue", field="event_types"
        )
    if locale is not None and locale not in LOCALES:
        raise InvalidInput(f"unsupported locale; use one of {list(LOCALES)}", field="locale")
    try:
        await check_url(url, allow_loopback=not state.settings.production)
    except UnsafeUrl as exc:
        raise InvalidInput(str(exc), field="url") from None


async def _endpoint(session: AsyncSession, endpoint_id: str) -> WebhookEndpointRow:
    row = await session.get(WebhookEndpointRow, endpoint_id)
    if row is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}", field="endpoint_id")
    return row


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
        state: State,
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[EndpointInput],
        idempotency_key: IdempotencyKey = None,
    ) -> EndpointView:
        await _checked(state, data.url, data.event_types, data.locale)
        if (
            await db_session.scalar(select(func.count()).select_from(WebhookEndpointRow)) or 0
        ) >= MAX_ENDPOINTS:
            raise Conflict(f"at most {MAX_ENDPOINTS} webhook endpoints", field="url")
        now, secret = utcnow(), new_secret()
        row = WebhookEndpointRow(
            id=new_id("we"),
            url=data.url,
            event_types=sorted(set(data.event_types)),
            locale=data.locale,
            description=data.description,
            enabled=True,
            disabled_reason=None,
            secret=secret,
            created_at=now,
            updated_at=now,
        )
        db_session.add(row)
        await commit(db_session)
        return EndpointView.of(row, secret=secret)

    @get(summary="The webhook endpoints", responses=problem_responses())
    async def list_endpoints(self, db_session: NamedDependency[AsyncSession]) -> EndpointList:
        rows = await db_session.scalars(select(WebhookEndpointRow).order_by(WebhookEndpointRow.created_at))
        return EndpointList([EndpointView.of(r) for r in rows])

    @get("/{endpoint_id:str}", summary="One webhook endpoint", responses=problem_responses(404))
    async def get_endpoint(self, db_session: NamedDependency[AsyncSession], endpoint_id: Id) -> EndpointView:
        return EndpointView.of(await _endpoint(db_session, endpoint_id))

    @patch(
        "/{endpoint_id:str}",
        summary="Change a webhook endpoint: URL, event types, locale, enabled",
        responses=problem_responses(404, 413, 415),
    )
    async def update_endpoint(
        self,
        state: State,
        db_session: NamedDependency[AsyncSession],
        endpoint_id: Id,
        data: JSONBody[EndpointPatch],
    ) -> EndpointView:
        row = await _endpoint(db_session, endpoint_id)
        url = data.url if data.url is not None else row.url
        event_types = data.event_types if data.event_types is not None else list(row.event_types)
        locale = data.locale if data.locale is not None else row.locale
        await _checked(state, url, event_types, locale)
        row.url, row.event_types, row.locale = url, sorted(set(event_types)), locale
        if data.description is not None:
            row.description = data.description
        if data.enabled is not None:
            row.enabled = data.enabled
            row.disabled_reason = None if data.enabled else "disabled by an admin"
        row.updated_at = utcnow()
        await commit(db_session)
        return EndpointView.of(row)

    @delete(
        "/{endpoint_id:str}",
        summary="Remove a webhook endpoint and its delivery log",
        responses=problem_responses(404),
    )
    async def delete_endpoint(self, db_session: NamedDependency[AsyncSession], endpoint_id: Id) -> None:
        await db_session.delete(await _endpoint(db_session, endpoint_id))
        await commit(db_session)

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
        row = await _endpoint(db_session, endpoint_id)
        now, secret = utcnow(), new_secret()
        row.previous_secret, row.previous_secret_until = row.secret, now + ROTATION
        row.secret, row.updated_at = secret, now
        await commit(db_session)
        return EndpointView.of(row, secret=secret)

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
        await _endpoint(db_session, endpoint_id)
        query = select(WebhookDeliveryRow).where(WebhookDeliveryRow.endpoint_id == endpoint_id)
        if cursor is not None:
            query = query.where(WebhookDeliveryRow.id < int(cursor))
        rows = list(await db_session.scalars(query.order_by(WebhookDeliveryRow.id.desc()).limit(PAGE + 1)))
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
            for r in rows[:PAGE]
        ]
        return DeliveryPage(views, str(rows[PAGE - 1].id) if len(rows) > PAGE else None)


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
        query = select(EventRow).where(EventRow.created_at >= utcnow() - RETENTION)
        if type is not None:
            query = query.where(EventRow.type == type)
        if product_id is not None:
            query = query.where(EventRow.product_id == product_id)
        if contract_id is not None:
            query = query.where(EventRow.contract_id == contract_id)
        if cursor is not None:
            query = query.where(EventRow.id < cursor)  # ids sort as the events were written
        rows = list(await db_session.scalars(query.order_by(EventRow.id.desc()).limit(PAGE + 1)))
        return EventPage(
            [EventView.of(r) for r in rows[:PAGE]], rows[PAGE - 1].id if len(rows) > PAGE else None
        )

    @get("/{event_id:str}", summary="One event", responses=problem_responses(404))
    async def get_event(self, db_session: NamedDependency[AsyncSession], event_id: Id) -> EventView:
        row = await db_session.get(EventRow, event_id)
        if row is None:
            raise NotFound(f"no event {event_id}", field="event_id")
        return EventView.of(row)

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
        row = await db_session.get(EventRow, event_id)
        if row is None:
            raise NotFound(f"no event {event_id}", field="event_id")
        endpoints = await db_session.scalars(
            select(WebhookEndpointRow).where(WebhookEndpointRow.enabled.is_(True))
        )
        unit = await unit_of_work(db_session)
        queued = 0
        for endpoint in endpoints:
            if wants(list(endpoint.event_types), row.type):
                await unit.enqueue(DELIVER, msgspec.json.encode(Delivery(row.id, endpoint.id)))
                queued += 1
        await commit(db_session)
        return Redelivery(row.id, queued)
