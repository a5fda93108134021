"""Deferred revenue: a plan's price is earned day by day over the coverage it pays for.

Per contract, at any instant: the payments are recognized straight-line over their periods, and
what is not yet recognized is deferred. Money going back (a refund, a lost dispute) ends the
contract's schedule: from then on everything it still holds is recognized, so a refund releases
the unrecognized part and never leaves a deferral behind. A payment that bought nothing (a
duplicate, a late or a mismatched payment) is owed back: deferred until its refund, never
recognized, and neither it nor its refund touches the contract's schedule. Recognized + deferred
= net collected, at every instant, by construction.
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
    # Money that bought nothing (a duplicate, late or mismatched payment) and what moved on it:
    # held until its refund, never earned, and no part of the contract's own schedule.
    owed_back: bool = False
    # The contract ended here (cancelled, charged back, lapsed, expired): no cover is owed past
    # it, so what it kept is earned from then on, refund or none (amount 0).
    ends_schedule: bool = False


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


def recognized_by_contract(
    movements: Iterable[Movement], as_of: dt.datetime
) -> dict[tuple[str | None, str], tuple[int, int]]:
    """Per (contract, currency): (net collected, recognized) as of an instant."""
    by_contract: dict[tuple[str | None, str], list[Movement]] = defaultdict(list)
    for movement in movements:
        if movement.occurred_at <= as_of:
            by_contract[(movement.contract_id, movement.currency)].append(movement)
    found: dict[tuple[str | None, str], tuple[int, int]] = {}
    for (contract_id, currency), moves in by_contract.items():
        net = sum(m.amount for m in moves)
        own = [m for m in moves if not m.owed_back]
        if contract_id is None or any(m.amount < 0 or m.ends_schedule for m in own):
            recognized = max(sum(m.amount for m in own), 0)  # the schedule ended: what is kept is earned
        else:
            recognized = sum(_earned(m.amount, m.period_start, m.period_end, as_of) for m in own)
        found[(contract_id, currency)] = (net, recognized)
    return found


def positions(movements: Iterable[Movement], as_of: dt.datetime) -> list[Position]:
    """Collected, recognized and deferred per currency, as of an instant (integer minor units;
    straight-line by the second, rounded down, so nothing is recognized early)."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (_contract, currency), (net, recognized) in recognized_by_contract(movements, as_of).items():
        totals[currency][0] += net
        totals[currency][1] += recognized
    return [
        Position(currency, collected, recognized, collected - recognized)
        for currency, (collected, recognized) in sorted(totals.items())
    ]


def months_between(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """The calendar months (UTC) that meet [start, end), each as [first instant, next month's)."""
    months = []
    at = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while at < end:
        following = (at + dt.timedelta(days=32)).replace(day=1)
        months.append((at, following))
        at = following
    return months


def earned_by_month(
    movements: Iterable[Movement], months: list[tuple[dt.datetime, dt.datetime]]
) -> dict[tuple[dt.datetime, str | None, str], int]:
    """Revenue earned in each month, per (month, contract, currency): recognized at the month's
    end less recognized at its start."""
    moves = list(movements)
    earned: dict[tuple[dt.datetime, str | None, str], int] = {}
    for first, following in months:
        before = recognized_by_contract(moves, first - dt.timedelta(microseconds=1))
        after = recognized_by_contract(moves, following - dt.timedelta(microseconds=1))
        for key, (_net, recognized) in after.items():
            amount = recognized - before.get(key, (0, 0))[1]
            if amount:
                earned[(first, *key)] = amount
    return earned


class LossRatio(msgspec.Struct, frozen=True):
    month: dt.date
    plan_code: str
    currency: str
    earned: int  # minor units of revenue earned in the month
    claim_cost: int  # minor units the plan's claims cost in the month (positive)
    loss_ratio: float | None  # claim cost ÷ earned revenue, 4 decimals; None when nothing was earned


def loss_ratios(
    earned: dict[tuple[dt.date, str, str], int], costs: dict[tuple[dt.date, str, str], int]
) -> list[LossRatio]:
    """One line per (month, plan, currency) that earned revenue or had claim costs."""
    lines = []
    for key in sorted(set(earned) | set(costs)):
        month, plan, currency = key
        revenue, cost = earned.get(key, 0), costs.get(key, 0)
        ratio = round(cost / revenue, 4) if revenue > 0 else None
        lines.append(LossRatio(month, plan, currency, revenue, cost, ratio))
    return lines
