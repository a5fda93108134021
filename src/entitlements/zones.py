"""Customers' time zones: the day an incident happened, and the dates a customer is shown, are
the customer's local ones.

A customer's zone is an IANA name. A country whose zones all keep one clock (the Philippines,
India, Sweden, Saudi Arabia, Vietnam; Germany with Busingen) gives it by default; a country with
several clocks (the United States, Brazil, Australia) must be told which.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.core import get_global

from entitlements.errors import InvalidInput

UTC = "UTC"
_MIDNIGHT = dt.time()


@lru_cache(maxsize=512)
def zone(name: str) -> dt.tzinfo:
    return dt.UTC if name == UTC else ZoneInfo(name)


# Files of the zone database that name no place's clock: the host's own (what `localtime` is
# depends on the server) and a placeholder for machines whose clock was never set.
_NOT_PLACES = frozenset({"localtime", "Factory", "posixrules"})


@lru_cache(maxsize=1)
def _names() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_PLACES


def known_zone(name: str) -> bool:
    return name == UTC or name in _names()


def check_zone(name: str) -> str:
    """An IANA zone name as given (`Asia/Manila`), or a problem naming the field."""
    if name not in _names():
        raise InvalidInput(f"{name!r} is not an IANA time zone such as Asia/Manila", field="time_zone")
    try:
        zone(name)
    except ZoneInfoNotFoundError:  # pragma: no cover - listed but not loadable
        raise InvalidInput(f"{name!r} is not an IANA time zone", field="time_zone") from None
    return name


def _clock(name: str, year: int) -> tuple[dt.timedelta | None, ...]:
    tz = zone(name)
    return tuple(dt.datetime(year, month, 15, 12, tzinfo=tz).utcoffset() for month in (1, 4, 7, 10))


@lru_cache(maxsize=512)
def zones_of(country: str) -> tuple[str, ...]:
    """The IANA zones of a country (CLDR), the principal one first."""
    return tuple(name for name in get_global("territory_zones").get(country, ()) if name in _names())


@lru_cache(maxsize=512)
def default_zone(country: str) -> str | None:
    """The zone of a country whose zones all keep one clock through the year; None when the
    country has several clocks (or none known)."""
    names = zones_of(country)
    if not names:
        return None
    year = dt.datetime.now(dt.UTC).year
    clocks = {_clock(name, year) for name in names}
    return names[0] if len(clocks) == 1 else None


def customer_zone(country: str, given: str | None) -> str:
    """The zone a customer's dates are in: the one given, else their country's only clock."""
    if given is not None:
        return check_zone(given)
    found = default_zone(country)
    if found is None:
        known = sorted(zones_of(country))
        examples = f"one of {', '.join(known[:4])}, …" if known else "an IANA name such as Asia/Manila"
        raise InvalidInput(
            f"{country} keeps several clocks: give the customer's time_zone, {examples}", field="time_zone"
        )
    return found


def day_start(day: dt.date, name: str = UTC) -> dt.datetime:
    """The instant a local day begins in zone `name`, in UTC."""
    start = dt.datetime.combine(day, _MIDNIGHT, dt.UTC if name == UTC else zone(name))
    return start if name == UTC else start.astimezone(dt.UTC)


def local_day(at: dt.datetime, name: str = UTC) -> dt.date:
    """The calendar day an instant falls on in zone `name`."""
    if name == UTC and at.utcoffset() == dt.timedelta(0):
        return at.date()
    return at.astimezone(zone(name)).date()


def country_days(at: dt.datetime, country: str) -> tuple[dt.date, dt.date]:
    """The earliest and the latest calendar day it is at `at` in the country (where it keeps
    several clocks) or in UTC, by whichever clock a shop dates its sales. At 01:00 in Manila UTC
    is still on yesterday: a purchase dated today is not in the future, and one a shop dated
    yesterday by UTC's clock was made at this very checkout."""
    days = [local_day(at), *(local_day(at, name) for name in zones_of(country))]
    return min(days), max(days)
