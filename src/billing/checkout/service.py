"""Checkout: a signed offer becomes a pending contract, then a payment attempt in the gateway.

No transaction is open while the gateway is called. The pending contract and the attempt commit
first (so every event Stripe sends about the payment finds its contract), then Stripe's object is
created and its id committed, then it is confirmed by id and the outcome committed. A checkout
asked again resumes its latest attempt from the last point reached: it never makes a second
Stripe object for one attempt, so it never charges twice, even on a server that keeps no
idempotency keys. A declined attempt is recorded (the decline code, never card data), and the
same offer may be paid again at once with another payment method: a new attempt, with Stripe
idempotency keys of its own.
"""

from __future__ import annotations

import datetime as dt

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import leases
from billing.catalog_sync import PriceSpec, contract_price
from billing.checkout.rules import AttemptStatus, attempt_status, needs_new_attempt, stripe_locales
from billing.gateway import Gateway, GatewayError
from billing.tables import PaymentAttemptRow
from entitlements import jobs
from entitlements.audit_names import Action
from entitlements.catalog import Billing, Plan
from entitlements.contracts import service as services
from entitlements.coverage import ContractStatus, add_months
from entitlements.errors import Conflict
from entitlements.money import Money
from entitlements.offers.rules import OfferKeyring
from entitlements.store import audit
from entitlements.store.base import utcnow
from entitlements.store.contracts import get_customer, get_product, plan_of
from entitlements.store.tables import ContractRow, CustomerRow
from entitlements.store.unit_of_work import commit, unit_of_work


class HostedPage(msgspec.Struct, frozen=True):
    success_url: str
    cancel_url: str


class CheckoutResult(msgspec.Struct, frozen=True):
    contract: ContractRow
    mode: str  # payment | subscription | hosted
    client_secret: str | None
    payment_status: str
    attempt: int
    decline_code: str | None = None
    payment_intent: str | None = None
    subscription: str | None = None
    checkout_url: str | None = None


async def start_checkout(
    session: AsyncSession,
    gateway: Gateway,
    *,
    offer_token: str,
    customer_id: str,
    product_id: str,
    payment_method: str | None,
    hosted: HostedPage | None = None,
    keyring: OfferKeyring,
    now: dt.datetime,
    actor: str,
    lease_seconds: float,
) -> CheckoutResult:
    """Upfront plans get a PaymentIntent; monthly and annual ones a subscription on the plan's
    catalog price (a fixed term paid in instalments ends itself at the term's end). Concurrent
    checkouts of one offer take turns asking Stripe (`billing.leases`): each answers the same
    attempt, and Stripe is asked once, even a Stripe server that keeps no idempotency keys."""
    contract = await services.open_contract(
        session,
        offer_token=offer_token,
        customer_id=customer_id,
        product_id=product_id,
        keyring=keyring,
        now=now,
        actor=actor,
    )
    customer = await get_customer(session, contract.customer_id)
    plan = await plan_of(session, contract)
    product = await get_product(session, contract.product_id)
    price = contract_price(plan, Money(product.price_amount, product.currency))
    if price is None or price.unit_amount != contract.price_amount:
        raise Conflict("the plan's price for this product has no catalog price", field="offer_token")
    mode = "hosted" if hosted else "payment" if plan.billing is Billing.UPFRONT else "subscription"
    waiting, waited_on = leases.Waiting(lease_seconds), None
    while True:
        attempt = await _attempt(session, contract, payment_method if not hosted else None, now, waited_on)
        declined = waited_on == attempt.number and attempt.status == AttemptStatus.DECLINED.value
        settled = contract.status != ContractStatus.PENDING_PAYMENT.value or attempt.status in _SETTLED
        lease = (
            None
            if settled or declined
            else await leases.take(session, f"checkout:{contract.id}", lease_seconds)
        )
        # The intent commits before the gateway is called: no lock waits on the network.
        await commit(session)
        if settled or declined or lease is not None:
            break
        # Another request on this offer is asking Stripe (a double click, a retry racing the
        # first): wait for it, then answer what it recorded (its decline too: the same card is
        # not charged again), or resume from there.
        waited_on = attempt.number
        if not await waiting.another_turn():
            raise Conflict("a payment for this offer is under way: ask again shortly", field="offer_token")
        await session.refresh(contract)
        await session.refresh(customer)
    if declined:
        status = "requires_payment_method" if mode == "payment" else "incomplete"
        return _result(contract, mode, attempt, status, attempt.decline_code)
    if lease is None:
        # Paid (or being paid): nothing is asked of Stripe again.
        paid = "active" if mode == "subscription" else "succeeded"
        return _result(contract, mode, attempt, "processing" if attempt.status == "processing" else paid)
    async with leases.held(session, lease):
        return await _ask_stripe(
            session, gateway, contract, attempt, customer, plan, price, payment_method, hosted, now, actor
        )


async def _ask_stripe(
    session: AsyncSession,
    gateway: Gateway,
    contract: ContractRow,
    attempt: PaymentAttemptRow,
    customer: CustomerRow,
    plan: Plan,
    price: PriceSpec,
    payment_method: str | None,
    hosted: HostedPage | None,
    now: dt.datetime,
    actor: str,
) -> CheckoutResult:
    """The attempt's Stripe objects, from the last point it reached, under the checkout's lease."""
    stripe_customer = customer.stripe_customer_id or await _gateway_customer(session, gateway, customer)
    key = f"checkout:{contract.id}:{attempt.number}"
    if hosted is not None:  # Stripe's own payment page; its events complete the contract
        page = await gateway.create_checkout_session(
            customer=stripe_customer,
            price=price,
            contract_id=contract.id,
            success_url=hosted.success_url,
            cancel_url=hosted.cancel_url,
            expires_at=session_expiry(contract.offer_expires_at, now),
            key=f"{key}:session",
        )
        await _record(session, contract, attempt, AttemptStatus.AWAITING_PAGE, page.id, None, actor)
        return CheckoutResult(contract, "hosted", None, "unpaid", attempt.number, checkout_url=page.url)
    if plan.billing is Billing.UPFRONT:
        return await _pay_upfront(session, gateway, contract, attempt, stripe_customer, key, actor)
    if payment_method is not None and attempt.stripe_object is None:
        declined = await _attach(gateway, stripe_customer, payment_method, key)
        if declined is not None:
            await _record(session, contract, attempt, AttemptStatus.DECLINED, None, declined, actor)
            return _result(contract, "subscription", attempt, "requires_payment_method", declined)
    subscription = await gateway.create_subscription(
        customer=stripe_customer,
        price=price,
        contract_id=contract.id,
        attempt=attempt.number,
        saved_payment_method=payment_method is not None,
        cancel_at=None if plan.auto_renew else add_months(contract.sold_at, plan.term_months),
        key=f"{key}:subscription",
    )
    contract.stripe_subscription_id = subscription.id
    outcome = attempt_status(subscription.status, subscription.decline_code)
    await _record(session, contract, attempt, outcome, subscription.id, subscription.decline_code, actor)
    return CheckoutResult(
        contract,
        "subscription",
        subscription.client_secret,
        subscription.status,
        attempt.number,
        subscription.decline_code,
        subscription=subscription.id,
    )


def session_expiry(offer_expires_at: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """A hosted page lives as long as its offer, within what Stripe allows (30 minutes to 24
    hours from now): an offer used in its last minutes keeps its page 30 minutes, and the
    abandonment job expires the page with the offer's contract."""
    earliest, latest = now + dt.timedelta(minutes=31), now + dt.timedelta(hours=23, minutes=59)
    return min(max(offer_expires_at or latest, earliest), latest)


_SETTLED = frozenset({AttemptStatus.SUCCEEDED, AttemptStatus.PROCESSING})


async def _pay_upfront(
    session: AsyncSession,
    gateway: Gateway,
    contract: ContractRow,
    attempt: PaymentAttemptRow,
    stripe_customer: str,
    key: str,
    actor: str,
) -> CheckoutResult:
    """Create the PaymentIntent unconfirmed and commit its id; then confirm it by id."""
    if attempt.stripe_object is None:
        created = await gateway.create_payment_intent(
            amount=Money(contract.price_amount, contract.currency),
            customer=stripe_customer,
            contract_id=contract.id,
            payment_method=attempt.payment_method,
            key=f"{key}:payment_intent",
        )
        contract.stripe_payment_intent_id = created.id
        await _record(session, contract, attempt, AttemptStatus.CREATED, created.id, None, actor)
    assert attempt.stripe_object is not None
    intent = await gateway.payment_intent(attempt.stripe_object)
    if intent.status == "requires_confirmation":
        intent = await gateway.confirm_payment_intent(intent.id, key=f"{key}:confirm")
    outcome = attempt_status(intent.status, intent.decline_code)
    await _record(session, contract, attempt, outcome, intent.id, intent.decline_code, actor)
    return CheckoutResult(
        contract,
        "payment",
        intent.client_secret,
        intent.status,
        attempt.number,
        intent.decline_code,
        payment_intent=intent.id,
    )


async def _attach(gateway: Gateway, stripe_customer: str, payment_method: str, key: str) -> str | None:
    """Save the card as the customer's default; the decline code when it is refused there."""
    try:
        await gateway.attach_payment_method(stripe_customer, payment_method, key=key)
    except GatewayError as exc:
        if not exc.declined:
            raise
        return exc.decline_code
    return None


async def _attempt(
    session: AsyncSession,
    contract: ContractRow,
    payment_method: str | None,
    now: dt.datetime,
    waited_on: int | None = None,
) -> PaymentAttemptRow:
    """The contract's latest attempt to resume, or a new one (taken under the contract's row
    lock, so two concurrent checkouts of one offer share an attempt). The attempt a request
    waited on is its answer, declined or not."""
    await session.execute(select(ContractRow.id).where(ContractRow.id == contract.id).with_for_update())
    latest = await session.scalar(
        select(PaymentAttemptRow)
        .where(PaymentAttemptRow.contract_id == contract.id)
        .order_by(PaymentAttemptRow.number.desc())
        .limit(1)
        .execution_options(populate_existing=True)  # as another checkout left it, when this one waited
    )
    if contract.status != ContractStatus.PENDING_PAYMENT.value:
        if latest is None:  # paid or ended some other way: there is nothing to pay here
            raise Conflict(f"the contract is {contract.status}: there is nothing to pay", field="offer_token")
        return latest
    status = AttemptStatus(latest.status) if latest is not None else None
    if latest is not None and (
        latest.number == waited_on or not needs_new_attempt(status, latest.payment_method, payment_method)
    ):
        return latest
    number = (latest.number if latest is not None else 0) + 1
    attempt = PaymentAttemptRow(
        contract_id=contract.id,
        number=number,
        status=AttemptStatus.STARTED.value,
        payment_method=payment_method,
        created_at=now,
        updated_at=now,
    )
    session.add(attempt)
    return attempt


async def _record(
    session: AsyncSession,
    contract: ContractRow,
    attempt: PaymentAttemptRow,
    status: AttemptStatus,
    stripe_object: str | None,
    decline_code: str | None,
    actor: str,
) -> None:
    """An attempt's progress, committed: the point a retried checkout resumes from."""
    attempt.status = status.value
    attempt.stripe_object = stripe_object or attempt.stripe_object
    attempt.decline_code = decline_code
    attempt.updated_at = utcnow()
    if status is AttemptStatus.DECLINED:
        entry = {"attempt": attempt.number, "decline_code": decline_code}
        await audit.append(
            await unit_of_work(session), "contract", contract.id, actor, [(Action.PAYMENT_DECLINED, entry)]
        )
    await commit(session)


async def _gateway_customer(session: AsyncSession, gateway: Gateway, customer: CustomerRow) -> str:
    """The customer's one Stripe customer: created on their first checkout, stored, reused."""
    created = await gateway.create_customer(
        customer_id=customer.id,
        name=customer.name,
        email=customer.email,
        locales=stripe_locales(customer.locale),
    )
    stored = await session.scalar(
        update(CustomerRow)
        .where(CustomerRow.id == customer.id, CustomerRow.stripe_customer_id.is_(None))
        .values(stripe_customer_id=created)
        .returning(CustomerRow.stripe_customer_id)
    )
    if stored is None:  # a concurrent checkout stored theirs first: that one is the customer's
        stored = await session.scalar(
            select(CustomerRow.stripe_customer_id).where(CustomerRow.id == customer.id)
        )
    else:
        # A rename committed while the gateway was called enqueued no push (there was no copy
        # yet): push the customer as they are once this commits.
        (await unit_of_work(session)).enqueue(jobs.CUSTOMER_CHANGED, customer.id.encode())
    await commit(session)
    return str(stored)


def _result(
    contract: ContractRow,
    mode: str,
    attempt: PaymentAttemptRow,
    status: str,
    decline_code: str | None = None,
) -> CheckoutResult:
    obj = attempt.stripe_object
    return CheckoutResult(
        contract,
        mode,
        None,
        status,
        attempt.number,
        decline_code,
        payment_intent=obj if obj and obj.startswith("pi_") else None,
        subscription=obj if obj and obj.startswith("sub_") else None,
    )
