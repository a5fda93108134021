"""Deferred revenue: a plan's price is earned day by day over the coverage it pays for.

Per contract, at any instant: the payments are recognized straight-line over their periods, and
what is not yet recognized is deferred. Money going back (a refund, a lost dispute) ends the
contract's schedule: from then on everything it still holds is recognized, so a refund releases
the unrecognized part and never leaves a deferral behind. Recognized + deferred = net collected,
at every instant, by construction.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

import msgspec


class Movement(msgspec.Struct, frozen=True):
    contract_id: str | None
    amount: int  # signed minor units
    currency: str
    occurred_at: dt.datetime
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None


class Position(msgspec.Struct, frozen=True):
    currency: str
    collected: int
    recognized: int
    deferred: int


def _earned(amount: int, start: dt.datetime | None, end: dt.datetime | None, at: dt.datetime) -> int:
    if start is None or end is None or end <= start or at >= end:
        return amount
    if at <= start:
        return 0
    return amount * int((at - start).total_seconds()) // int((end - start).total_seconds())


def positions(movements: Iterable[Movement], as_of: dt.datetime) -> list[Position]:
    """Collected, recognized and deferred per currency, as of an instant (integer minor units;
    straight-line by the second, rounded down, so nothing is recognized early)."""
    by_contract: dict[tuple[str | None, str], list[Movement]] = defaultdict(list)
    for movement in movements:
        if movement.occurred_at <= as_of:
            by_contract[(movement.contract_id, movement.currency)].append(movement)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (contract_id, currency), moves in by_contract.items():
        net = sum(m.amount for m in moves)
        returned = [m.occurred_at for m in moves if m.amount < 0]
        if contract_id is None or returned:
            recognized = max(net, 0)  # the schedule ended: what is kept is earned
        else:
            recognized = sum(_earned(m.amount, m.period_start, m.period_end, as_of) for m in moves)
        totals[currency][0] += net
        totals[currency][1] += recognized
    return [
        Position(currency, collected, recognized, collected - recognized)
        for currency, (collected, recognized) in sorted(totals.items())
    ]
