"""Due-by instants, property-tested against a clock that steps minute by minute: business minutes
counted from `opened_at` within the schedule's hours, holidays skipped, across a daylight-saving
change, and never before `opened_at`."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from entitlements.catalog import (
    ALWAYS,
    Hours,
    Schedule,
    Weekday,
    check_schedule,
    clock_minutes,
    week_minutes,
)
from entitlements.support.rules import due_by
from entitlements.zones import zone

W = Weekday
WEEKDAYS = (W.MON, W.TUE, W.WED, W.THU, W.FRI)
# Zones that change their clocks (at 01:00–03:00 local) and one that does not.
ZONES = st.sampled_from(["Europe/Stockholm", "America/New_York", "Asia/Manila", "UTC"])
# Whole hours away from the hours clocks change in, so each opening's edges exist once.
EDGES = st.sampled_from([0, 6, 7, 8, 9, 12, 13, 17, 18, 20, 22, 24])
# Around the 2026 changes: Europe 29 March and 25 October, the US 8 March and 1 November.
OPENED = st.datetimes(dt.datetime(2026, 2, 20), dt.datetime(2026, 12, 10), timezones=st.just(dt.UTC)).map(
    lambda t: t.replace(second=0, microsecond=0)
)


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    hours = []
    for _ in range(draw(st.integers(1, 3))):
        opens, closes = sorted(draw(st.lists(EDGES, min_size=2, max_size=2, unique=True)))
        days = tuple(draw(st.lists(st.sampled_from(list(Weekday)), min_size=1, max_size=7, unique=True)))
        hours.append(Hours(days, f"{opens:02}:00", f"{closes:02}:00"))
    holidays = tuple(draw(st.lists(st.dates(dt.date(2026, 2, 20), dt.date(2026, 12, 31)), max_size=4)))
    return Schedule(draw(ZONES), tuple(hours), holidays)


def open_at(schedule: Schedule, at: dt.datetime) -> bool:
    """Whether the minute starting at `at` is a business minute, read off the local clock."""
    local = at.astimezone(zone(schedule.time_zone))
    if local.date() in schedule.holidays:
        return False
    minute = local.hour * 60 + local.minute
    return any(
        W(list(W)[local.weekday()]) in h.days and clock_minutes(h.opens) <= minute < clock_minutes(h.closes)
        for h in schedule.hours
    )


def stepped(schedule: Schedule, opened_at: dt.datetime, minutes: int) -> dt.datetime:
    at, left = opened_at, minutes
    while left:
        if open_at(schedule, at):
            left -= 1
        at += dt.timedelta(minutes=1)
    return at


@given(schedules(), OPENED, st.integers(1, 3000))
def test_the_due_by_is_where_a_minute_by_minute_clock_gets_to(
    schedule: Schedule, opened_at: dt.datetime, minutes: int
) -> None:
    due = due_by(schedule, opened_at, minutes)
    assert due >= opened_at
    assert due == stepped(schedule, opened_at, minutes)


@given(OPENED, st.integers(1, 600_000))
def test_round_the_clock_is_the_minutes_themselves(opened_at: dt.datetime, minutes: int) -> None:
    assert due_by(ALWAYS, opened_at, minutes) == opened_at + dt.timedelta(minutes=minutes)
    stockholm = Schedule("Europe/Stockholm", ALWAYS.hours)  # a 23- or 25-hour day keeps its length
    assert due_by(stockholm, opened_at, minutes) == opened_at + dt.timedelta(minutes=minutes)


@given(schedules(), OPENED, st.data())
def test_a_longer_target_is_never_due_sooner(
    schedule: Schedule, opened_at: dt.datetime, data: st.DataObject
) -> None:
    # Targets a catalog accepts: at most a year of the schedule's hours.
    targets = st.integers(1, min(20_000, 52 * week_minutes(schedule)))
    a, b = data.draw(targets, "a"), data.draw(targets, "b")
    assert (due_by(schedule, opened_at, a) <= due_by(schedule, opened_at, b)) is (a <= b) or a == b


def test_a_target_a_catalog_accepts_falls_due_however_many_holidays_come_first() -> None:
    """Open on Mondays only, with the next 300 Mondays holidays: a year of Mondays falls due on
    the 352nd Monday, more than six years ahead."""
    opened_at = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)  # a Monday
    mondays = Schedule(
        "UTC",
        (Hours((W.MON,), "00:00", "24:00"),),
        tuple(opened_at.date() + dt.timedelta(weeks=n) for n in range(300)),
    )
    year = 52 * week_minutes(mondays)
    assert due_by(mondays, opened_at, year) == opened_at + dt.timedelta(weeks=351, days=1)


def test_office_hours_across_the_weekend_the_clocks_went_back() -> None:
    office = Schedule("America/New_York", (Hours(WEEKDAYS, "09:00", "17:00"),), (dt.date(2026, 11, 3),))
    friday_4pm = dt.datetime(2026, 10, 30, 16, tzinfo=zone("America/New_York"))  # EDT
    # Two hours: one on Friday, one on Monday (EST now); Tuesday is a holiday.
    assert due_by(office, friday_4pm, 120) == dt.datetime(2026, 11, 2, 10, tzinfo=zone("America/New_York"))
    assert due_by(office, friday_4pm, 60 * 9) == dt.datetime(2026, 11, 2, 17, tzinfo=zone("America/New_York"))
    assert due_by(office, friday_4pm, 60 * 10) == dt.datetime(
        2026, 11, 4, 10, tzinfo=zone("America/New_York")
    )
    sunday = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)  # closed: counting starts Monday at nine
    assert due_by(office, sunday, 1) == dt.datetime(2026, 11, 2, 9, 1, tzinfo=zone("America/New_York"))


def test_a_schedule_that_closes_before_it_opens_or_names_no_zone_is_refused() -> None:
    bad = Schedule("Mars/Olympus", (Hours(WEEKDAYS, "17:00", "09:00"),))
    assert {p.path for p in check_schedule(bad)} == {"time_zone", "hours[0]"}
