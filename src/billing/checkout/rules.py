"""Checkout's pure rules: where a payment attempt stands, when a new one is needed, and which
of our languages Stripe's pages speak."""

from __future__ import annotations

from enum import StrEnum


class AttemptStatus(StrEnum):
    """Where one try to pay a contract's first payment stands."""

    STARTED = "started"  # committed before Stripe was asked: no Stripe object known yet
    CREATED = "created"  # Stripe's object exists (its id stored), its outcome not yet known
    REQUIRES_ACTION = "requires_action"  # the shopper must authenticate (3-D Secure) on the page
    AWAITING_PAGE = "awaiting_page"  # the page confirms it (Stripe.js or Stripe's hosted page)
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    DECLINED = "declined"


# A new payment method may replace an attempt in these; a paid or paying one never.
_REPLACEABLE = frozenset(
    {AttemptStatus.STARTED, AttemptStatus.CREATED, AttemptStatus.REQUIRES_ACTION, AttemptStatus.AWAITING_PAGE}
)


def needs_new_attempt(latest: AttemptStatus | None, latest_method: str | None, method: str | None) -> bool:
    """A checkout asked again resumes its latest attempt (a retry, or a crash's recovery: the
    same Stripe object, never a second charge) unless that attempt was declined, or is still
    unpaid and the shopper now pays with another payment method."""
    if latest is None or latest is AttemptStatus.DECLINED:
        return True
    return latest in _REPLACEABLE and method is not None and method != latest_method


def attempt_status(stripe_status: str, decline_code: str | None) -> AttemptStatus:
    """A PaymentIntent's or first invoice's status, as an attempt's."""
    if decline_code is not None:
        return AttemptStatus.DECLINED
    return {
        "succeeded": AttemptStatus.SUCCEEDED,
        "active": AttemptStatus.SUCCEEDED,
        "trialing": AttemptStatus.SUCCEEDED,
        "processing": AttemptStatus.PROCESSING,
        "requires_action": AttemptStatus.REQUIRES_ACTION,
        "requires_payment_method": AttemptStatus.AWAITING_PAGE,
        "requires_confirmation": AttemptStatus.CREATED,
        "incomplete": AttemptStatus.AWAITING_PAGE,
    }.get(stripe_status, AttemptStatus.CREATED)


# The languages Stripe's receipts, invoices and hosted pages speak, of ours. Stripe has no
# Arabic or Hindi: those customers get the account's default language (English).
STRIPE_LOCALES = {"en": "en", "sv": "sv", "vi": "vi", "fil": "fil"}


def stripe_locales(locale: str) -> list[str]:
    """`preferred_locales` for a customer in our `locale` (a BCP 47 tag such as sv or sv-SE)."""
    language = locale.replace("_", "-").split("-")[0].lower()
    return [STRIPE_LOCALES[language]] if language in STRIPE_LOCALES else []
