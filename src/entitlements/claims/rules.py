"""Claims' pure rules: which contract a claim applies to, and how much of it the plan pays."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import msgspec

from entitlements.coverage import Decision


class Payout(msgspec.Struct, frozen=True):
    covered_amount: int  # minor units the plan pays
    deductible: int  # minor units the customer pays first


def claim_payout(claimed: int, decision: Decision) -> Payout:
    """A covered claim pays what was claimed less the deductible, never below zero, and never
    more than the aggregate limit has left; a claim not covered pays nothing (its deductible is
    still stated, as the answer a caller hears)."""
    deductible = decision.deductible.amount if decision.deductible else 0
    if not decision.covered:
        return Payout(0, deductible)
    payable = max(claimed - deductible, 0)
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
