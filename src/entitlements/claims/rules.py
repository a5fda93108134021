"""Claims' pure rules: which contract a claim applies to, how much of it the plan pays, which
claims wait for a reviewer, and the moves a claim makes from filing to its end."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from enum import StrEnum

import msgspec

from entitlements.catalog import ClaimReview, CoverageKind, ExchangePolicy
from entitlements.coverage import ClaimUse, Decision
from entitlements.identifiers import luhn_valid
from entitlements.money import Money


class ClaimStatus(StrEnum):
    """`filed` is the instant of filing (the `claim.filed` event); a stored claim is in one of
    the others. Approved and fulfilled claims count against the plan's limits."""

    IN_REVIEW = "in_review"
    INFO_REQUESTED = "info_requested"
    APPROVED = "approved"
    DENIED = "denied"
    FULFILLED = "fulfilled"
    VOIDED = "voided"


# Claims that use up the plan's limits (their count and amount).
COUNTED = (ClaimStatus.APPROVED.value, ClaimStatus.FULFILLED.value)
# Claims a reviewer still has to decide.
AWAITING_REVIEW = (ClaimStatus.IN_REVIEW.value, ClaimStatus.INFO_REQUESTED.value)


class Fulfilment(StrEnum):
    """How an approved claim is made good."""

    REPAIR = "repair"  # a service order to a repair centre
    REPLACE = "replace"  # a replacement product, by SKU, at its cost
    REIMBURSE = "reimburse"  # what the plan pays, owed to the customer (finance pays it)
    GIFT_CARD = "gift_card"  # a code the reviewer supplies


def fulfilment_order(exchange: ExchangePolicy) -> list[Fulfilment]:
    """The ways to make an approved claim good, in the order the plan's exchange policy offers
    them: a replacement sent ahead first, or a repair first."""
    if exchange is ExchangePolicy.ADVANCE_REPLACEMENT:
        return [Fulfilment.REPLACE, Fulfilment.REPAIR, Fulfilment.REIMBURSE, Fulfilment.GIFT_CARD]
    return [Fulfilment.REPAIR, Fulfilment.REPLACE, Fulfilment.REIMBURSE, Fulfilment.GIFT_CARD]


# A repair the servicer could not make: the claim waits to be fulfilled by a replacement.
REPLACEMENT_DUE = "replacement_due"


class ReviewAction(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    REQUEST_INFO = "request_info"  # ask the customer for a photo, a receipt, a report
    RESUME = "resume"  # the information came: back to review


_MOVES: dict[tuple[ClaimStatus, ReviewAction], ClaimStatus] = {
    (ClaimStatus.IN_REVIEW, ReviewAction.APPROVE): ClaimStatus.APPROVED,
    (ClaimStatus.IN_REVIEW, ReviewAction.DENY): ClaimStatus.DENIED,
    (ClaimStatus.IN_REVIEW, ReviewAction.REQUEST_INFO): ClaimStatus.INFO_REQUESTED,
    (ClaimStatus.INFO_REQUESTED, ReviewAction.APPROVE): ClaimStatus.APPROVED,
    (ClaimStatus.INFO_REQUESTED, ReviewAction.DENY): ClaimStatus.DENIED,
    (ClaimStatus.INFO_REQUESTED, ReviewAction.RESUME): ClaimStatus.IN_REVIEW,
}

# The reason codes a reviewer gives with each action.
REASON_CODES: dict[ReviewAction, tuple[str, ...]] = {
    ReviewAction.APPROVE: ("verified", "evidence_received", "goodwill"),
    ReviewAction.DENY: (
        "not_covered",
        "insufficient_evidence",
        "pre_existing_damage",
        "misuse",
        "suspected_fraud",
        "duplicate",
    ),
    ReviewAction.REQUEST_INFO: ("photo", "receipt", "police_report", "description"),
    ReviewAction.RESUME: ("information_received",),
}


def next_status(status: ClaimStatus, action: ReviewAction) -> ClaimStatus | None:
    """Where a review action takes a claim; None: the action does not apply in this status."""
    return _MOVES.get((status, action))


class ReviewReason(StrEnum):
    """Why a claim the rules would approve waits for a reviewer."""

    AMOUNT = "amount_over_threshold"
    THEFT_LOSS = "theft_loss"
    REPEAT = "repeat_repair"
    SOON_AFTER_SALE = "soon_after_sale"
    FLAGGED = "fraud_flag"


class FraudFlag(StrEnum):
    """Signals shown to the reviewer; never a denial by themselves."""

    FREQUENT_CLAIMS = "frequent_claims"
    SERIAL_OF_ANOTHER_CUSTOMER = "serial_of_another_customer"  # the device shown is someone else's
    IMEI_FAILS_LUHN = "imei_fails_luhn"  # the IMEI read off the device is not a real one


def fraud_flags(
    review: ClaimReview,
    claims_in_30_days: int,
    *,
    serial_elsewhere: bool = False,
    device_imei: str | None = None,
) -> tuple[FraudFlag, ...]:
    """`claims_in_30_days`: the customer's claims filed in the 30 days before this one;
    `serial_elsewhere`: the serial given with the claim is registered to another customer's
    product; `device_imei`: the IMEI read off the device at intake, digits only."""
    flags = []
    limit = review.claims_in_30_days
    if limit is not None and claims_in_30_days > limit:
        flags.append(FraudFlag.FREQUENT_CLAIMS)
    if serial_elsewhere:
        flags.append(FraudFlag.SERIAL_OF_ANOTHER_CUSTOMER)
    if device_imei is not None and not (len(device_imei) == 15 and luhn_valid(device_imei)):
        flags.append(FraudFlag.IMEI_FAILS_LUHN)
    return tuple(flags)


def review_reasons(
    review: ClaimReview,
    *,
    kind: CoverageKind,
    amount: Money,
    incident_at: dt.datetime,
    sold_at: dt.datetime,
    approved: Sequence[ClaimUse],
    flags: Sequence[FraudFlag] = (),
) -> tuple[ReviewReason, ...]:
    """Every rule of the plan's that sends this claim to review, in a fixed order; none: the
    rules decide it alone. `approved`: the contract's counted claims before this one."""
    reasons: list[ReviewReason] = []
    threshold = review.amount_over.get(amount.currency)
    if threshold is not None and amount.amount > threshold:
        reasons.append(ReviewReason.AMOUNT)
    if review.theft_loss and kind is CoverageKind.THEFT_LOSS:
        reasons.append(ReviewReason.THEFT_LOSS)
    if review.repeat_within_days is not None:
        window = dt.timedelta(days=review.repeat_within_days)
        if any(
            u.incident_kind is kind and incident_at - window <= u.incident_at <= incident_at for u in approved
        ):
            reasons.append(ReviewReason.REPEAT)
    if review.days_after_sale is not None and incident_at - sold_at < dt.timedelta(
        days=review.days_after_sale
    ):
        reasons.append(ReviewReason.SOON_AFTER_SALE)
    if flags:
        reasons.append(ReviewReason.FLAGGED)
    return tuple(reasons)


def filed_in_time(incident_date: dt.date, filed_on: dt.date, window_days: int | None) -> bool:
    """A claim comes within the plan's window after its incident (both days the customer's)."""
    return window_days is None or (filed_on - incident_date).days <= window_days


class Payout(msgspec.Struct, frozen=True):
    covered_amount: int  # minor units the plan pays
    deductible: int  # minor units the customer pays first


def claim_payout(claimed: int, decision: Decision) -> Payout:
    """A covered claim pays what was claimed less the deductible, never below zero, never more
    than its coverage pays for one claim, and never more than the aggregate limit has left; a
    claim not covered pays nothing (its deductible is still stated, as the answer a caller hears)."""
    deductible = decision.deductible.amount if decision.deductible else 0
    if not decision.covered:
        return Payout(0, deductible)
    payable = max(claimed - deductible, 0)
    if decision.claim_max is not None:
        payable = min(payable, decision.claim_max.amount)
    if decision.remaining_aggregate is not None:
        payable = min(payable, decision.remaining_aggregate.amount)
    return Payout(payable, deductible)


class Candidate(msgspec.Struct, frozen=True):
    contract_id: str
    sold_at: dt.datetime
    covers_incident: bool  # on the incident's day, for its kind


def contract_for_incident(candidates: Sequence[Candidate]) -> str:
    """Of a product's contracts, the one a claim by serial applies to: the latest sold of those
    that cover the incident, else the latest sold (whose decision then says why not). Ties on the
    sale instant go to the greater id, so the choice never depends on the order given."""
    if not candidates:
        raise ValueError("no contract to choose from")
    covering = [c for c in candidates if c.covers_incident] or list(candidates)
    return max(covering, key=lambda c: (c.sold_at, c.contract_id)).contract_id
