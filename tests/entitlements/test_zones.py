"""The customer's day: incidents known by their date, and the dates a customer is shown."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entitlements.catalog import ClaimWindow, CoverageKind
from entitlements.coverage import ContractFacts, ContractStatus, Decision, Period, decide_for_incident_day
from entitlements.errors import InvalidInput
from entitlements.money import Money
from entitlements.summaries import summarize
from entitlements.zones import customer_zone, day_start, default_zone, local_day
from tests.entitlements.test_coverage import plan

ZONES = [
    "UTC",
    "Asia/Manila",
    "Asia/Kolkata",
    "America/New_York",
    "America/Los_Angeles",
    "Pacific/Kiritimati",
]


def test_a_country_with_one_clock_gives_its_zone_and_one_with_several_asks() -> None:
    assert [default_zone(c) for c in ("PH", "IN", "SE", "SA", "VN", "DE")] == [
        "Asia/Manila",
        "Asia/Kolkata",
        "Europe/Stockholm",
        "Asia/Riyadh",
        "Asia/Ho_Chi_Minh",
        "Europe/Berlin",
    ]
    assert default_zone("US") is None and default_zone("AU") is None
    with pytest.raises(InvalidInput) as asked:
        customer_zone("US", None)
    assert asked.value.field == "time_zone"
    for nowhere in ("Asia/Atlantis", "localtime", "Factory", "posixrules"):  # no place's clock
        with pytest.raises(InvalidInput):
            customer_zone("PH", nowhere)
    assert customer_zone("US", "America/Chicago") == "America/Chicago"


@given(
    day=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 1, 1)),
    zone=st.sampled_from(ZONES),
)
def test_a_local_day_begins_where_the_previous_one_ends(day: dt.date, zone: str) -> None:
    start, end = day_start(day, zone), day_start(day + dt.timedelta(days=1), zone)
    assert start.utcoffset() == dt.timedelta(0)
    assert local_day(start, zone) == day
    assert local_day(end - dt.timedelta(microseconds=1), zone) == day
    assert dt.timedelta(hours=23) <= end - start <= dt.timedelta(hours=25)  # DST days


def facts(periods: tuple[Period, ...], zone: str) -> ContractFacts:
    return ContractFacts(
        "ctr",
        ContractStatus.ACTIVE,
        plan(None, ClaimWindow.TERM),
        "USD",
        Money(100000, "USD"),
        periods[0].start,
        periods,
        time_zone=zone,
    )


def test_an_incident_on_the_customers_last_day_of_cover_is_covered() -> None:
    """Cover ends at 20:00 UTC on 27 November: already the 28th in Manila, still the 27th in
    New York. An incident on the 28th is covered for the Manila customer (cover held at the start
    of their day), and not for one in New York."""
    ends = dt.datetime(2026, 11, 27, 20, tzinfo=dt.UTC)
    cover = (Period(ends - dt.timedelta(days=365), ends),)
    day = dt.date(2026, 11, 28)
    assert decide_for_incident_day(facts(cover, "Asia/Manila"), day, CoverageKind.SCREEN).covered
    assert not decide_for_incident_day(facts(cover, "America/New_York"), day, CoverageKind.SCREEN).covered
    assert not decide_for_incident_day(facts(cover, "UTC"), day, CoverageKind.SCREEN).covered


@given(
    start=st.datetimes(
        min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1), timezones=st.just(dt.UTC)
    ),
    days=st.integers(1, 800),
    zone=st.sampled_from(ZONES),
    offset=st.integers(-3, 3),
)
def test_an_incident_day_is_covered_exactly_when_cover_held_at_some_moment_of_it(
    start: dt.datetime, days: int, zone: str, offset: int
) -> None:
    cover = (Period(start, start + dt.timedelta(days=days)),)
    day = local_day(start, zone) + dt.timedelta(days=offset)
    held = day_start(day, zone) < cover[0].end and cover[0].start < day_start(
        day + dt.timedelta(days=1), zone
    )
    assert decide_for_incident_day(facts(cover, zone), day, CoverageKind.SCREEN).covered is held


def test_the_summary_shows_the_customers_day() -> None:
    ends = dt.datetime(2028, 3, 5, 20, tzinfo=dt.UTC)
    decision = Decision(
        True, None, "ctr", ContractStatus.ACTIVE, ends - dt.timedelta(days=9), period_end=ends
    )
    assert "March 5, 2028" in summarize(decision, "en", plan_name="P")
    assert "March 6, 2028" in summarize(decision, "en", plan_name="P", time_zone="Asia/Manila")
