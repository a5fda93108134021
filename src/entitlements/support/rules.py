"""Support levels' pure rule: when a case opened at an instant is due, counted in the support
schedule's business hours.

The one rule (the README states it): starting at `opened_at`, count the minutes that fall inside
the schedule's opening hours, local to its time zone, on days that are not its holidays; the case
is due when `minutes` of them have passed. Minutes are real elapsed time, so a day the clocks
change keeps its true length: an hour of opening that a spring-forward skips is not counted, and
one a fall-back repeats is counted twice. A due-by instant is never before `opened_at`, and a case
opened outside the hours starts counting when they next open.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import msgspec

from entitlements.catalog import Schedule, Support, SupportChannel, SupportLevel, weekly_intervals
from entitlements.zones import zone

_DAY = dt.timedelta(days=1)
_WEEK = dt.timedelta(days=7)
_MINUTE = dt.timedelta(minutes=1)
# How far ahead a due-by is looked for, a week more for each holiday on the way: far past any
# target a catalog accepts (a year of the schedule's hours, `catalog.check_plan`).
HORIZON_DAYS = 366 * 5


class Due(msgspec.Struct, frozen=True):
    """A channel's targets, and the instants they fall due for a case opened at `opened_at`."""

    channel: SupportChannel
    first_response_minutes: int
    resolution_minutes: int
    first_response_due: dt.datetime | None = None  # with `opened_at`
    resolution_due: dt.datetime | None = None


class SupportAnswer(msgspec.Struct, frozen=True):
    """The support a contract grants at the instant asked about."""

    level: SupportLevel
    channels: list[SupportChannel]
    exchange: str  # what a claim's fulfilment offers first: repair_first, advance_replacement
    time_zone: str  # the schedule's: business hours are counted there
    targets: list[Due]
    opened_at: dt.datetime | None = None


@lru_cache(maxsize=8192)  # checks of one day ask about the same days' openings
def _instant(day: dt.date, minute: int, tz: dt.tzinfo) -> dt.datetime:
    """The first instant whose wall time in `tz` on `day` is at or past `minute` of the day."""
    if minute >= 1440:
        day, minute = day + _DAY, 0
    wall = dt.datetime.combine(day, dt.time(minute // 60, minute % 60))
    at = wall.replace(tzinfo=tz).astimezone(dt.UTC)
    if at.astimezone(tz).replace(tzinfo=None) == wall:
        return at
    # A wall time the clocks skip: the first one after it is the change itself.
    at = wall.replace(tzinfo=tz, fold=1).astimezone(dt.UTC)
    while at.astimezone(tz).replace(tzinfo=None) < wall:
        at += _MINUTE
    return at


def due_by(schedule: Schedule, opened_at: dt.datetime, minutes: int) -> dt.datetime:
    """The instant `minutes` business minutes after `opened_at` (the module's rule)."""
    tz = zone(schedule.time_zone)
    weekly = weekly_intervals(schedule)
    holidays = frozenset(schedule.holidays)
    week_minutes = sum(closes - opens for intervals in weekly for opens, closes in intervals)
    if week_minutes == 0:
        raise ValueError("a schedule with no opening hours")
    remaining = dt.timedelta(minutes=minutes)
    day = opened_at.astimezone(tz).date()
    last = day + dt.timedelta(days=HORIZON_DAYS)
    first = True
    while day <= last:
        # A whole week with no holiday and no clock change holds exactly its opening minutes.
        start = _instant(day, 0, tz)
        if (
            not first
            and remaining > dt.timedelta(minutes=week_minutes)
            and not any(day + dt.timedelta(days=i) in holidays for i in range(7))
            and _instant(day + _WEEK, 0, tz) - start == _WEEK
        ):
            remaining -= dt.timedelta(minutes=week_minutes)
            day += _WEEK
            continue
        first = False
        if day in holidays:
            last += _WEEK  # the hours it closes are found a week further on
        else:
            for opens, closes in weekly[day.weekday()]:
                end = _instant(day, closes, tz)
                if end <= opened_at:
                    continue
                begin = max(_instant(day, opens, tz), opened_at)
                if remaining <= end - begin:
                    return begin + remaining
                remaining -= end - begin
        day += _DAY
    raise ValueError(f"not due within {HORIZON_DAYS} days and its holidays: the schedule opens too seldom")


def support_answer(support: Support, opened_at: dt.datetime | None) -> SupportAnswer:
    """The plan's support, with the due-by instants of a case opened at `opened_at` (if given)."""
    targets = []
    for target in support.targets:
        due = Due(target.channel, target.first_response_minutes, target.resolution_minutes)
        if opened_at is not None:
            due = msgspec.structs.replace(
                due,
                first_response_due=due_by(support.schedule, opened_at, target.first_response_minutes),
                resolution_due=due_by(support.schedule, opened_at, target.resolution_minutes),
            )
        targets.append(due)
    return SupportAnswer(
        support.level,
        list(support.channels),
        support.exchange.value,
        support.schedule.time_zone,
        targets,
        opened_at,
    )
