"""A product's entitlement, decided from its snapshot: every contract's decision, and the one that
answers for the product. Pure: the check reads it, and the outbox reports it (`coverage.changed`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from entitlements.catalog import CoverageKind, Plan
from entitlements.coverage import (
    BenefitLeft,
    ContractStatus,
    Decision,
    PaidBy,
    Reason,
    best_decision,
    decide_entitlement,
    no_contract,
    payers,
)
from entitlements.money import Money
from entitlements.store.snapshots import ContractSnapshot, ProductSnapshot


class ContractDecision(msgspec.Struct, frozen=True):
    contract: ContractSnapshot
    decision: Decision
    payers: tuple[tuple[CoverageKind, PaidBy], ...] = ()  # who pays, per coverage, at the instant


class ProductEntitlement(msgspec.Struct, frozen=True):
    product: ProductSnapshot
    best: Decision
    contracts: list[ContractDecision]


PlanLoader = Callable[[str, int], Awaitable[Plan | None]]


async def plans_for(load: PlanLoader, snapshots: list[ProductSnapshot]) -> dict[tuple[str, int], Plan]:
    plans: dict[tuple[str, int], Plan] = {}
    for snapshot in snapshots:
        for contract in snapshot.contracts:
            key = (contract.plan_code, contract.plan_version)
            if key not in plans:
                plan = await load(*key)
                if plan is None:  # published versions are never deleted
                    raise RuntimeError(f"contract {contract.contract_id} pins a missing plan version")
                plans[key] = plan
    return plans


def decide_product(
    snapshot: ProductSnapshot,
    plans: dict[tuple[str, int], Plan],
    at: dt.datetime,
    incident: CoverageKind | None,
) -> ProductEntitlement:
    """The decision from every contract on the product, and the one that answers for it."""
    price, zone, warranty = snapshot.price, snapshot.time_zone, snapshot.warranty_parts_until
    decisions = []
    for c in snapshot.contracts:
        facts = c.facts(plans[(c.plan_code, c.plan_version)], price, zone, warranty)
        decision = decide_entitlement(facts, at, incident)
        decisions.append(ContractDecision(c, decision, payers(facts, decision)))
    best = best_decision([d.decision for d in decisions]) if decisions else no_contract(at, incident)
    return ProductEntitlement(snapshot, best, decisions)


def coverage_data(entitlement: ProductEntitlement) -> dict[str, Any]:
    """The product's check answer with no incident, locale-neutral: `coverage.changed`'s data."""
    best = entitlement.best
    return {
        "product_id": entitlement.product.product_id,
        "time_zone": entitlement.product.time_zone,  # the customer's: their days
        "at": best.at.isoformat(),
        "covered": best.covered,
        "reason": best.reason.value if best.reason else None,
        "contract_id": best.contract_id,  # the contract that answers for the product
        "contracts": [_contract_data(item) for item in entitlement.contracts],
    }


def _instant(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _contract_data(item: ContractDecision) -> dict[str, Any]:
    c, d = item.contract, item.decision
    aggregate = d.remaining_aggregate
    return {
        "contract_id": c.contract_id,
        "plan_code": c.plan_code,
        "plan_version": c.plan_version,
        "status": c.status.value,
        "covered": d.covered,
        "reason": d.reason.value if d.reason else None,
        "coverages": [kind.value for kind in d.coverages],
        "starts_at": _instant(c.coverage_starts_at),
        "period_end": _instant(d.period_end),
        "ended_at": _instant(c.ended_at or max((p.end for p in c.periods), default=None)),
        "waiting_until": _instant(d.waiting_until),
        "grace_until": _instant(d.grace_until),
        "remaining_claims": d.remaining_claims,
        "remaining_aggregate": {"amount": aggregate.amount, "currency": aggregate.currency}
        if aggregate
        else None,
        "disputed": c.disputed,
        "paid_by": {kind.value: payer.value for kind, payer in item.payers},
        "benefits": msgspec.to_builtins(d.benefits),
    }


def decision_of(data: dict[str, Any]) -> tuple[Decision, dict[str, Any] | None]:
    """The answering decision back from `coverage_data`, and its contract's entry (None: none)."""
    entry = next((c for c in data["contracts"] if c["contract_id"] == data.get("contract_id")), None)
    at = dt.datetime.fromisoformat(data["at"])
    reason = Reason(data["reason"]) if data["reason"] else None
    if entry is None:
        return Decision(data["covered"], reason, None, None, at), None

    def instant(key: str) -> dt.datetime | None:
        value = entry.get(key)
        return dt.datetime.fromisoformat(value) if value else None

    aggregate = entry.get("remaining_aggregate")
    decision = Decision(
        covered=data["covered"],
        reason=reason,
        contract_id=entry["contract_id"],
        status=ContractStatus(entry["status"]),
        at=at,
        coverages=tuple(CoverageKind(k) for k in entry["coverages"]),
        remaining_claims=entry.get("remaining_claims"),
        remaining_aggregate=Money(aggregate["amount"], aggregate["currency"]) if aggregate else None,
        period_end=instant("period_end"),
        waiting_until=instant("waiting_until"),
        grace_until=instant("grace_until"),
        benefits=msgspec.convert(entry.get("benefits", []), tuple[BenefitLeft, ...]),
    )
    return decision, entry
