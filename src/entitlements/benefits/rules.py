"""Included services' pure rules: whether one can be redeemed at an instant, and the life of a
redemption (redeemed, then perhaps voided, which gives its use back)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from entitlements.catalog import BenefitKind
from entitlements.coverage import ContractFacts, Reason, benefits_left, why_not_in_cover
from entitlements.errors import Conflict


class RedemptionStatus(StrEnum):
    REDEEMED = "redeemed"  # counts against the benefit
    VOIDED = "voided"  # given back: counts no more


class Unredeemable(StrEnum):
    """Why a service cannot be redeemed, when the contract's cover is not the reason."""

    NOT_INCLUDED = "benefit_not_included"  # the plan does not include this service
    USED_UP = "benefit_used_up"  # none left in the window


def redemption_refusal(
    facts: ContractFacts, kind: BenefitKind, at: dt.datetime
) -> Unredeemable | Reason | None:
    """Why `kind` cannot be redeemed on the contract at `at`; None: it can. Outside the
    contract's cover, the reason the check gives (lapsed, expired, cancelled, …)."""
    if facts.plan.benefit(kind) is None:
        return Unredeemable.NOT_INCLUDED
    reason = why_not_in_cover(facts, at)
    if reason is not None:
        return reason
    left = next(b for b in benefits_left(facts, at) if b.kind == kind)
    return Unredeemable.USED_UP if left.remaining == 0 else None


class NotRedeemable(Conflict):
    """The contract cannot give this service now: `reason` says why (the plan does not include
    it, none is left, or the contract's cover is not in force)."""

    def __init__(self, reason: Unredeemable | Reason, kind: BenefitKind, contract_id: str) -> None:
        super().__init__(
            f"{kind.value} cannot be redeemed on contract {contract_id}: {reason.value}", field="kind"
        )
        self.reason = reason
