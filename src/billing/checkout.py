"""Checkout: a signed offer becomes a pending contract and a payment in the gateway."""

from __future__ import annotations

import datetime as dt

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from billing.gateway import Gateway
from entitlements import jobs, services
from entitlements.catalog import Billing
from entitlements.contracts import billing_interval_months
from entitlements.coverage import add_months
from entitlements.money import Money
from entitlements.offers import OfferKeyring
from entitlements.store.contracts import get_customer, plan_of
from entitlements.store.tables import ContractRow
from entitlements.store.unit_of_work import commit, unit_of_work


class HostedPage(msgspec.Struct, frozen=True):
    success_url: str
    cancel_url: str


class CheckoutResult(msgspec.Struct, frozen=True):
    contract: ContractRow
    mode: str  # payment | subscription | hosted
    client_secret: str | None
    payment_status: str
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
) -> CheckoutResult:
    """Upfront plans get a PaymentIntent; monthly and annual ones a subscription that starts
    incomplete until the first invoice is paid (a fixed term paid in instalments ends itself at
    the term's end). Keys follow from the contract, whose id follows from the offer: a retried
    checkout reaches the gateway as the same request. The caller's session commits the outcome
    (the gateway's ids) in a unit of work of its own."""
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
    # The intent (the pending contract) commits before the gateway is called: no lock waits on
    # the network, and an event the gateway sends about this payment finds its contract. A
    # checkout retried after a failed call finds the same contract and makes the same calls.
    await commit(session)
    stripe_customer = await gateway.ensure_customer(
        customer_id=customer.id, name=customer.name, email=customer.email
    )
    if customer.stripe_customer_id != stripe_customer:
        customer.stripe_customer_id = stripe_customer  # with the outcome, in the caller's unit
        # A rename committed while the gateway was called enqueued no push (there was no copy
        # yet): push the customer as they are once this commits.
        await (await unit_of_work(session)).enqueue(jobs.CUSTOMER_CHANGED, customer.id.encode())
    price = Money(contract.price_amount, contract.currency)
    if hosted is not None:  # Stripe's own payment page; its events complete the contract
        page = await gateway.create_checkout_session(
            customer=stripe_customer,
            amount=price,
            interval_months=None if plan.billing is Billing.UPFRONT else billing_interval_months(plan),
            contract_id=contract.id,
            product_name=plan.text("en").name,
            success_url=hosted.success_url,
            cancel_url=hosted.cancel_url,
            key=f"checkout:{contract.id}:session",
        )
        return CheckoutResult(contract, "hosted", None, "unpaid", checkout_url=page.url)
    if plan.billing is Billing.UPFRONT:
        intent = await gateway.create_payment_intent(
            amount=price,
            customer=stripe_customer,
            contract_id=contract.id,
            payment_method=payment_method,
            key=f"checkout:{contract.id}:payment_intent",
        )
        contract.stripe_payment_intent_id = intent.id
        return CheckoutResult(
            contract, "payment", intent.client_secret, intent.status, payment_intent=intent.id
        )
    cancel_at = None if plan.auto_renew else add_months(contract.sold_at, plan.term_months)
    subscription = await gateway.create_subscription(
        customer=stripe_customer,
        amount=price,
        interval_months=billing_interval_months(plan),
        contract_id=contract.id,
        payment_method=payment_method,
        cancel_at=cancel_at,
        key=f"checkout:{contract.id}:subscription",
    )
    contract.stripe_subscription_id = subscription.id
    return CheckoutResult(
        contract,
        "subscription",
        subscription.client_secret,
        subscription.status,
        subscription=subscription.id,
    )
