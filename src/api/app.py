"""The app factory: everything is built here, nothing at import."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import structlog
from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, OpenAPIType, SecurityScheme, Server
from litestar.routes import HTTPRoute

from api.auth import KeyCache
from api.database import ConnectionBudget, Database, provide_session
from api.dependencies import provide_services
from api.edge import STRIPE_EVENTS, Edge, Route
from api.errors import EXCEPTION_HANDLERS
from api.idempotency import IdempotencyMiddleware, ReplaySeal
from api.logs import configure_logging
from api.pages import page_handlers
from api.pages.docs import DocsPage
from api.rate_limits import RateLimits
from api.routes.benefits import BenefitController
from api.routes.billing import (
    CancellationController,
    CheckoutController,
    DirectWebhook,
    SandboxController,
    StripeWebhookController,
    deliver_sandbox_events,
)
from api.routes.claims import ClaimController
from api.routes.contracts import ContractController
from api.routes.entitlements import DirectCheck, EntitlementController
from api.routes.events import EventController, WebhookEndpointController
from api.routes.evidence import EvidenceController, UploadController
from api.routes.finance import FinanceController
from api.routes.health import HealthController
from api.routes.offers import OfferController
from api.routes.people import CustomerController, ProductController
from api.routes.plans import PlanController
from api.routes.repairs import ServiceOrderController, ServicerController
from api.routes.reports import ReportController
from api.routes.unsubscribe import UnsubscribeController
from api.settings import Settings, load_settings
from api.storage import evidence_store
from billing.gateway import Gateway, GatewayError
from billing.sandbox import SandboxGateway
from billing.stripe_gateway import StripeGateway
from entitlements.localization import load_locale_data
from entitlements.money import configure_ceilings

API_VERSION = "0.1.0"

DESCRIPTION = """\
Service-plan subscriptions and entitlement checks.

Authenticate with `Authorization: Bearer <key>`. Publishable keys (`pk_…`) may read plans and
request offers from a browser; secret keys (`sk_…`) carry scopes: `checkout`, `support`,
`finance`, `admin`, or `servicer` alone (a repair centre's key, for its own service orders).
Every error is an RFC 9457 problem (`application/problem+json`). Every POST
accepts an `Idempotency-Key` header: the same key and body within 24 hours replays the first
response. Money is `{"amount": <integer minor units>, "currency": "<ISO 4217>"}`.
"""


class CoverlineApp(Litestar):
    """Litestar, with the request edge (`api.edge`) in front of its router."""

    edge: Edge

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self.edge(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Coverline",
        version=API_VERSION,
        description=DESCRIPTION,
        servers=[Server(url="/")],
        components=Components(
            security_schemes={
                "apiKey": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="A publishable (`pk_…`) or secret (`sk_…`) API key",
                )
            }
        ),
        security=[{"apiKey": []}],
        path="/docs",
        render_plugins=[DocsPage(path="/")],
        use_handler_docstrings=False,
    )


def create_app(settings: Settings | None = None, *, long_lived: bool = False) -> CoverlineApp:
    """The app; `long_lived` for a server process, whose start-up heap is then frozen out of
    the cyclic collector once it is complete (see `production_app`)."""
    settings = settings or load_settings()
    configure_logging(settings.log_format, settings.log_level)
    db = Database(
        settings.database_url, var_dir=settings.var_dir, budget=ConnectionBudget(settings.db_connections)
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        await db.start()
        await _detect_gateway(app.state.gateway)
        if long_lived:
            # What exists by now (modules, the app, its pools, every locale's CLDR data) lives
            # as long as the worker. Frozen out of the cyclic collector, no collection walks it
            # again: unfrozen, each full collection stalled every request in flight, for
            # 100–500 ms at first and still 10–30 ms with the locale data loaded lazily, which
            # made the check's p99 (`make bench`).
            load_locale_data()
            gc.freeze()
        try:
            yield
        finally:
            await db.dispose()

    key_cache = KeyCache(db, settings.key_cache_seconds)
    app = CoverlineApp(
        route_handlers=[
            HealthController,
            PlanController,
            OfferController,
            CustomerController,
            ProductController,
            ContractController,
            ClaimController,
            BenefitController,
            ReportController,
            EvidenceController,
            UploadController,
            ServicerController,
            ServiceOrderController,
            EntitlementController,
            WebhookEndpointController,
            EventController,
            CheckoutController,
            CancellationController,
            StripeWebhookController,
            SandboxController,
            FinanceController,
            UnsubscribeController,
            *page_handlers(),
        ],
        # One dependency per level (`api.dependencies`): `db_session` is built from `services`.
        dependencies={
            "services": Provide(provide_services, sync_to_thread=False),
            "db_session": Provide(provide_session),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[IdempotencyMiddleware],
        openapi_config=openapi_config(),
        lifespan=[lifespan],
        state=State(
            {
                "settings": settings,
                "db": db,
                "key_cache": key_cache,
                "gateway": make_gateway(settings),
                "replay_seal": ReplaySeal(settings.replay_key),
                "evidence_store": evidence_store(settings),
            }
        ),
        before_request=strict_body,
        after_response=deliver_after_response,
        # A body is bounded once, by the edge (`COVERLINE_MAX_BODY_BYTES`, an upload's own
        # bound): it reads every POST, PUT and PATCH body before Litestar does.
        request_max_body_size=None,
        logging_config=None,  # `configure_logging` above: one renderer for every line
        debug=False,
    )
    configure_ceilings(settings.amount_ceilings)
    app.edge = Edge(
        Litestar.__call__.__get__(app),
        settings,
        _route_table(app),
        shortcuts={("GET", "/v1/entitlements"): DirectCheck(db, key_cache)},
        body_shortcuts={("POST", STRIPE_EVENTS): DirectWebhook(app.state)},
        keys=key_cache,
        limits=RateLimits(db.lease_tokens, batch=settings.rate_limit_batch),
    )
    return app


_ROUTE_TABLE: list[Route] = []


def _route_table(app: Litestar) -> list[Route]:
    """Each path's methods and the query parameters the OpenAPI document declares for them.

    Every app has the same handlers, so the table is built once per process: building the
    OpenAPI document is half of what building an app costs."""
    if not _ROUTE_TABLE:
        _ROUTE_TABLE.extend(_routes_of(app))
    return _ROUTE_TABLE


def _routes_of(app: Litestar) -> list[Route]:
    paths = app.openapi_schema.paths or {}
    table = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        item = paths.get(route.path_format)
        methods: dict[str, frozenset[str] | None] = {}
        integers: set[str] = set()
        for method in route.methods:
            operation = getattr(item, str(method).lower(), None) if item else None
            if operation is None:  # the docs UI and OPTIONS: not part of the API document
                methods[str(method)] = None
                continue
            query = [p for p in operation.parameters or [] if getattr(p, "param_in", "") == "query"]
            methods[str(method)] = frozenset(p.name for p in query)
            integers.update(p.name for p in query if _whole_number(p.schema))
        table.append(Route(route.path_format, methods, frozenset(integers)))
    return table


def _whole_number(schema: object) -> bool:
    """An integer parameter's schema: `integer`, or one of `integer` and `null`."""
    kinds = [schema, *(getattr(schema, "one_of", None) or [])]
    return any(getattr(kind, "type", None) == OpenAPIType.INTEGER for kind in kinds)


async def _detect_gateway(gateway: Gateway) -> None:
    """What the Stripe server can do (Prices, or Plans only), asked once at start-up; a server
    that does not answer now is asked again on first need, and start-up goes on."""
    if isinstance(gateway, StripeGateway):
        try:
            await asyncio.wait_for(gateway.has_prices(), timeout=10)
        except (GatewayError, TimeoutError) as exc:
            structlog.get_logger("api.app").warning("stripe capabilities not known yet", error=str(exc))


def make_gateway(settings: Settings) -> Gateway:
    """Stripe when a key is configured, else the offline sandbox (which signs its events with the
    first webhook secret, so they pass the same verification as Stripe's)."""
    if settings.stripe_api_key:
        return StripeGateway(
            settings.stripe_api_key, api_base=settings.stripe_api_base, test_clock=settings.stripe_test_clock
        )
    return SandboxGateway(settings.stripe_webhook_secrets[0], public_url=settings.public_url)


async def strict_body(request: Request[Any, Any, Any]) -> None:
    """The JSON body read strictly, as the OpenAPI document says, once the guards have passed:
    Litestar converts a body with msgspec's lax rules, which would read `"100"` as 100 and an
    epoch number as an instant."""
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    if data is None or request.content_type[0] == "multipart/form-data":
        return  # no body, or a claim's evidence (the edge lets multipart through there alone)
    body = await request.body()
    if not body:
        return
    try:
        msgspec.json.decode(body, type=data.annotation, strict=True)
    except msgspec.ValidationError as exc:
        raise ValidationException(extra=[{"message": str(exc), "source": "body"}]) from None
    except msgspec.DecodeError:
        pass  # not JSON: Litestar's own answer follows (400 malformed-body)


async def deliver_after_response(request: Request[Any, Any, Any]) -> None:
    """Sandbox events reach the webhook handler after the request that caused them committed."""
    state = request.app.state
    await deliver_sandbox_events(state.gateway, state.db, state.settings)


def production_app() -> CoverlineApp:
    """Entry point for the server's workers (`coverline serve`)."""
    return create_app(long_lived=True)
