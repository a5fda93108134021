"""A product's entitlement, decided from its snapshot: every contract's decision, and the one that
answers for the product. Pure: the check reads it, and the outbox reports it (`coverage.changed`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from entitlements.catalog import CoverageKind, Plan
from entitlements.coverage import Decision, best_decision, decide_entitlement, no_contract
from entitlements.store.snapshots import ContractSnapshot, ProductSnapshot


class ContractDecision(msgspec.Struct, frozen=True):
    contract: ContractSnapshot
    decision: Decision


class ProductEntitlement(msgspec.Struct, frozen=True):
    product: ProductSnapshot
    best: Decision
    contracts: list[ContractDecision]


def decide_product(
    snapshot: ProductSnapshot,
    plans: dict[tuple[str, int], Plan],
    at: dt.datetime,
    incident: CoverageKind | None,
) -> ProductEntitlement:
    """The decision from every contract on the product, and the one that answers for it."""
    decisions = [
        ContractDecision(
            c, decide_entitlement(c.facts(plans[(c.plan_code, c.plan_version)], snapshot.price), at, incident)
        )
        for c in snapshot.contracts
    ]
    best = best_decision([d.decision for d in decisions]) if decisions else no_contract(at, incident)
    return ProductEntitlement(snapshot, best, decisions)


def coverage_data(entitlement: ProductEntitlement) -> dict[str, Any]:
    """The product's check answer with no incident, locale-neutral: `coverage.changed`'s data."""
    best = entitlement.best
    return {
        "product_id": entitlement.product.product_id,
        "at": best.at.isoformat(),
        "covered": best.covered,
        "reason": best.reason.value if best.reason else None,
        "contracts": [
            {
                "contract_id": item.contract.contract_id,
                "plan_code": item.contract.plan_code,
                "plan_version": item.contract.plan_version,
                "status": item.contract.status.value,
                "covered": item.decision.covered,
                "reason": item.decision.reason.value if item.decision.reason else None,
                "coverages": [c.value for c in item.decision.coverages],
                "period_end": item.decision.period_end.isoformat() if item.decision.period_end else None,
                "remaining_claims": item.decision.remaining_claims,
                "grace_until": item.decision.grace_until.isoformat() if item.decision.grace_until else None,
                "disputed": item.contract.disputed,
            }
            for item in entitlement.contracts
        ],
    }
