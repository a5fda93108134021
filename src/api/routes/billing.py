"""Checkout, Stripe's webhooks, and the sandbox's clock."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import access_guard, actor
from api.database import Database
from api.dependencies import Injected, Services
from api.edge import header
from api.errors import problem_responses
from api.keys import Scope
from api.routes.contracts import ContractView, contract_view
from api.routes.people import Id
from api.settings import Settings
from api.views import IdempotencyKey
from billing.cancellation.service import cancel_contract, quote_refund
from billing.checkout.service import HostedPage, start_checkout
from billing.gateway import Gateway
from billing.sandbox import SandboxGateway
from billing.webhooks.service import Outcome, ingest, record_and_apply
from billing.webhooks.signatures import SignatureError, verify
from entitlements.clock import utcnow
from entitlements.contracts import service as use_cases
from entitlements.customers import service as customers
from entitlements.errors import Conflict
from entitlements.money import Money
from entitlements.refunds import RefundBasis

Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
log = structlog.get_logger("api.webhooks")
TestCard = Annotated[str, msgspec.Meta(pattern=r"^pm_[A-Za-z0-9_]{1,100}$")]


Url = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s]{1,2000}$")]


class Hosted(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    success_url: Url
    cancel_url: Url


class CheckoutRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    offer_token: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    customer_id: Ref
    product_id: Ref
    # Confirm server-side with a saved payment method; without it the page confirms with the
    # client secret (Stripe.js). In the sandbox: pm_card_visa, pm_card_chargeDeclined, …
    payment_method: TestCard | None = None
    # Alternatively, Stripe's hosted payment page: the answer carries its `checkout_url`.
    hosted: Hosted | None = None


class CheckoutView(msgspec.Struct, frozen=True):
    contract: ContractView
    mode: str  # payment | subscription | hosted
    client_secret: str | None
    payment_status: str
    # The try this answer is about: a declined one (decline_code set) may be followed at once by
    # another with a different payment method, for the same offer.
    attempt: int
    decline_code: str | None
    payment_intent: str | None
    subscription: str | None
    checkout_url: str | None


class WebhookReceipt(msgspec.Struct, frozen=True):
    received: bool
    event_id: str
    outcome: Outcome


class ClockAdvance(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    days: Annotated[int, msgspec.Meta(ge=1, le=800)]
    # Whose test clock: one customer's (as a Stripe test clock holds the customers made on it);
    # without, every customer's there is. Customers made later start at the real time.
    customer_id: Ref | None = None
    # From now on, renewals are charged to this card instead of the customer's (the demo's decline).
    renewal_card: TestCard | None = None


class PayHostedPage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    payment_method: TestCard = "pm_card_visa"


class HostedPageView(msgspec.Struct, frozen=True):
    id: str
    status: str
    events_delivered: int


class ClockView(msgspec.Struct, frozen=True):
    now: dt.datetime
    events_delivered: int


class CheckoutController(Controller):
    path = "/v1/checkouts"
    tags = ["checkouts"]
    guards = [access_guard]
    opt = {"access": frozenset({Scope.CHECKOUT, Scope.ADMIN})}

    @post(
        summary="Sell a signed offer: a pending contract and its payment (PaymentIntent or subscription)",
        responses=problem_responses(404, 409, 413, 415, 422, 502),
    )
    async def checkout(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[CheckoutRequest],
        idempotency_key: IdempotencyKey = None,
    ) -> CheckoutView:
        result = await start_checkout(
            db_session,
            services.gateway,
            offer_token=data.offer_token,
            customer_id=data.customer_id,
            product_id=data.product_id,
            payment_method=data.payment_method,
            hosted=HostedPage(data.hosted.success_url, data.hosted.cancel_url) if data.hosted else None,
            keyring=services.settings.offer_keys,
            now=utcnow(),
            actor=actor(request),
            lease_seconds=services.settings.idempotency_lease_seconds,
        )
        # The sandbox's events (a card charged at once) are applied before the answer, as a
        # synchronous charge would be; Stripe's arrive by webhook whenever they come.
        await use_cases.commit_now(db_session)
        if await deliver_sandbox_events(services.gateway, services.db, services.settings):
            await db_session.refresh(result.contract)
        return CheckoutView(
            await contract_view(db_session, result.contract),
            result.mode,
            result.client_secret,
            result.payment_status,
            result.attempt,
            result.decline_code,
            result.payment_intent,
            result.subscription,
            result.checkout_url,
        )


class RefundQuoteView(msgspec.Struct, frozen=True):
    contract_id: str
    refund: Money
    basis: RefundBasis
    fee: Money
    unused_days: int
    period_days: int
    quoted_at: dt.datetime


class CancelRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    refund: Money  # the amount of the quote being accepted


class RefundView(msgspec.Struct, frozen=True):
    id: str
    amount: Money
    status: str


class CancelView(msgspec.Struct, frozen=True):
    contract: ContractView
    refund: RefundView | None  # the first of `refunds` (the newest payment's), if any
    # One per payment given back, newest first: a subscription cancelled in its free look after
    # two invoices gets two, since Stripe refunds no charge beyond its amount.
    refunds: list[RefundView]


CANCEL_ACCESS = frozenset({Scope.SUPPORT, Scope.CHECKOUT, Scope.ADMIN})


class CancellationController(Controller):
    path = "/v1/contracts/{contract_id:str}"
    tags = ["contracts"]
    guards = [access_guard]
    opt = {"access": CANCEL_ACCESS}

    @post(
        "/refund-quote",
        summary="What cancelling now would refund, by the plan's policy (free look, pro rata, fee)",
        responses=problem_responses(404, 409, 413, 415),
        status_code=200,
    )
    async def refund_quote(
        self,
        db_session: NamedDependency[AsyncSession],
        contract_id: Id,
        idempotency_key: IdempotencyKey = None,
    ) -> RefundQuoteView:
        now = utcnow()
        quoted = await quote_refund(db_session, contract_id, now)
        q = quoted.quote
        return RefundQuoteView(contract_id, q.amount, q.basis, q.fee, q.unused_days, q.period_days, now)

    @post(
        "/cancel",
        summary="Cancel now with the quoted refund: refunded through Stripe once, subscription stopped",
        responses=problem_responses(402, 404, 409, 413, 415, 502),
        status_code=200,
    )
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        contract_id: Id,
        data: JSONBody[CancelRequest],
        idempotency_key: IdempotencyKey = None,
    ) -> CancelView:
        contract, refunds = await cancel_contract(
            db_session,
            services.gateway,
            contract_id,
            expected_refund=data.refund,
            at=utcnow(),
            actor=actor(request),
            lease_seconds=services.settings.idempotency_lease_seconds,
        )
        views = [RefundView(refund.id, refund.amount, refund.status) for refund in refunds]
        return CancelView(await contract_view(db_session, contract), views[0] if views else None, views)


class StripeWebhookController(Controller):
    path = "/v1/stripe/webhooks"
    tags = ["stripe"]
    security = [{}]  # signed by Stripe instead

    @post(
        summary="Stripe's events: verified on the raw body, stored once, applied in one transaction",
        responses=problem_responses(413, 415, 503),
        status_code=200,
    )
    async def receive(self, request: Request[Any, Any, Any], services: Injected[Services]) -> WebhookReceipt:
        outcome, event_id = await ingest(
            services.db.unit_of_work,
            await request.body(),
            request.headers.get("stripe-signature"),
            secrets=services.settings.stripe_webhook_secrets,
            gateway=services.gateway,
            now=time.time(),
        )
        return WebhookReceipt(True, event_id, outcome)


class DirectWebhook:
    """`POST /v1/stripe/webhooks` answered in front of Litestar, once the edge has read and
    checked the body: Stripe posts every event here, and routing, dependency injection and the
    response object cost about a fifth of an event's CPU (`bench.profile_check --webhooks`). It
    answers only what the controller would answer 200 to, byte for byte (a test holds the two
    to it). A bad signature or an Idempotency-Key goes to the controller untouched; so does an
    event whose unit failed (rolled back, nothing stored): the controller tries it again and
    words whatever fails."""

    _encoder = msgspec.json.Encoder()

    def __init__(self, state: Any) -> None:
        self.state = state  # the app's: its gateway, database and settings as they are now

    async def __call__(self, scope: dict[str, Any], body: bytes, send: Any) -> bool:
        """True when it answered; False leaves the request to the controller."""
        if header(scope, b"idempotency-key") is not None:
            return False
        state = self.state
        try:
            verify(
                body, header(scope, b"stripe-signature"), state.settings.stripe_webhook_secrets, time.time()
            )
        except SignatureError:
            return False
        try:
            outcome, event_id = await record_and_apply(state.db.unit_of_work, body, state.gateway)
        except Exception as exc:
            log.warning("stripe event failed ahead of the app, which tries it again", error=repr(exc))
            return False
        answer = self._encoder.encode(WebhookReceipt(True, event_id, outcome))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})
        await deliver_sandbox_events(state.gateway, state.db, state.settings)  # as after a response
        return True


class SandboxController(Controller):
    path = "/v1/sandbox"
    tags = ["sandbox"]
    guards = [access_guard]
    opt = {"access": frozenset({Scope.ADMIN})}

    @post(
        "/clock/advance",
        summary="Advance the sandbox's test clocks: renewals fall due, are paid or fail (404 on Stripe)",
        responses=problem_responses(404, 409, 413, 415),
        status_code=200,
    )
    async def advance(
        self,
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[ClockAdvance],
        idempotency_key: IdempotencyKey = None,
    ) -> ClockView:
        sandbox = _sandbox(services.gateway)
        clock = None
        if data.customer_id is not None:
            customer = await customers.customer(db_session, data.customer_id)
            if customer.stripe_customer_id is None:
                raise Conflict("the customer has no Stripe customer yet (no checkout)", field="customer_id")
            clock = customer.stripe_customer_id
        await db_session.rollback()  # nothing of ours is held while the clock moves
        if data.renewal_card is not None:
            sandbox.renewal_card = data.renewal_card
        now = sandbox.advance(data.days, clock)
        delivered = await deliver_sandbox_events(sandbox, services.db, services.settings)
        return ClockView(now, delivered)

    @post(
        "/checkout-sessions/{session_id:str}/pay",
        summary="Pay a sandbox hosted checkout page as the customer would (404 on Stripe)",
        responses=problem_responses(402, 404, 413, 415),
        status_code=200,
    )
    async def pay_hosted_page(
        self,
        services: Injected[Services],
        session_id: Id,
        data: JSONBody[PayHostedPage],
        idempotency_key: IdempotencyKey = None,
    ) -> HostedPageView:
        status = await _sandbox(services.gateway).complete_checkout_session(session_id, data.payment_method)
        delivered = await deliver_sandbox_events(services.gateway, services.db, services.settings)
        return HostedPageView(session_id, status, delivered)


def _sandbox(gateway: Gateway) -> SandboxGateway:
    if not isinstance(gateway, SandboxGateway):
        raise NotFoundException("this exists only with the sandbox gateway")
    return gateway


async def deliver_sandbox_events(gateway: Gateway, db: Database, settings: Settings) -> int:
    """Hand the sandbox's events to the webhook handler, signed, as Stripe would deliver them."""
    if not isinstance(gateway, SandboxGateway):
        return 0

    async def to_handler(raw: bytes, signature: str) -> None:
        await ingest(
            db.unit_of_work,
            raw,
            signature,
            secrets=settings.stripe_webhook_secrets,
            gateway=gateway,
            now=time.time(),
        )

    return await gateway.deliver(to_handler)
