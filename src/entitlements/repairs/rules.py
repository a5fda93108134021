"""Repairs' pure rules: the moves of a service order, who may take an offered order, and when an
estimate waits for approval."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated

import msgspec

Amount = Annotated[int, msgspec.Meta(ge=0, le=10**12)]  # minor units of the order's currency


class OrderStatus(StrEnum):
    OFFERED = "offered"  # to every servicer of the product's category and country; first to accept
    ASSIGNED = "assigned"  # to one servicer by an admin; it accepts
    ACCEPTED = "accepted"
    PRODUCT_RECEIVED = "product_received"
    DIAGNOSED = "diagnosed"  # with an estimate of parts and labour
    REPAIR_STARTED = "repair_started"
    REPAIRED = "repaired"
    SHIPPED = "shipped"
    CLOSED = "closed"
    CANNOT_REPAIR = "cannot_repair"  # the claim is then fulfilled by a replacement
    CANCELLED = "cancelled"  # a visit's redemption was voided before a servicer accepted it


# The moves a servicer reports, from each status (accepting is a move of its own: `accept`).
_NEXT: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.ACCEPTED: frozenset({OrderStatus.PRODUCT_RECEIVED, OrderStatus.CANNOT_REPAIR}),
    OrderStatus.PRODUCT_RECEIVED: frozenset({OrderStatus.DIAGNOSED, OrderStatus.CANNOT_REPAIR}),
    OrderStatus.DIAGNOSED: frozenset({OrderStatus.REPAIR_STARTED, OrderStatus.CANNOT_REPAIR}),
    OrderStatus.REPAIR_STARTED: frozenset({OrderStatus.REPAIRED, OrderStatus.CANNOT_REPAIR}),
    OrderStatus.REPAIRED: frozenset({OrderStatus.SHIPPED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.CLOSED}),
}
# A visit (an installation, a maintenance visit) has no product to receive, diagnose or ship
# back: accepted, started on site, done (with its cost), closed; or it could not be made.
_VISIT_NEXT: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.ACCEPTED: frozenset({OrderStatus.REPAIR_STARTED, OrderStatus.CANNOT_REPAIR}),
    OrderStatus.REPAIR_STARTED: frozenset({OrderStatus.REPAIRED, OrderStatus.CANNOT_REPAIR}),
    OrderStatus.REPAIRED: frozenset({OrderStatus.CLOSED}),
}
ENDED = frozenset({OrderStatus.CLOSED, OrderStatus.CANNOT_REPAIR, OrderStatus.CANCELLED})
WAITING = frozenset({OrderStatus.OFFERED, OrderStatus.ASSIGNED})  # for a servicer to accept


def can_move(current: OrderStatus, to: OrderStatus, *, visit: bool = False) -> bool:
    return to in (_VISIT_NEXT if visit else _NEXT).get(current, frozenset())


class Estimate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Minor units of the order's currency."""

    parts: Amount = 0
    labour: Amount = 0

    @property
    def total(self) -> int:
        return self.parts + self.labour


class Cost(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the repair cost, in minor units of the order's currency."""

    parts: Amount = 0
    labour: Amount = 0
    shipping: Amount = 0

    @property
    def total(self) -> int:
        return self.parts + self.labour + self.shipping


def estimate_waits(estimate: Estimate, payable: int) -> bool:
    """An estimate above what the claim may still pay waits for a person's approval before the
    repair starts."""
    return estimate.total > payable


def serves(categories: Sequence[str], countries: Sequence[str], category: str, country: str) -> bool:
    """Whether a servicer takes orders for this product: its category, and its country (a
    servicer that names no country serves every one)."""
    return category in categories and (not countries or country in countries)
