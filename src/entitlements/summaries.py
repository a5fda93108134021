"""One paragraph, in the caller's language, that an agent reads on screen or a phone bot says.

The same sentences serve three voices: the screen (amounts and dates as that locale writes them),
the ear (plain text a speech engine reads right: currency names instead of symbols or codes, no
zero decimals, dates as people say them, serials in groups of characters) and, from that same
text, SSML for a voice platform (`xml:lang`, `say-as` for serials and dates).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from xml.sax.saxutils import escape

import msgspec
from babel.core import get_global
from babel.languages import get_territory_language_info
from babel.lists import format_list

from entitlements.catalog import SupportChannel, SupportLevel
from entitlements.coverage import WARRANTY_KINDS, Decision, Reason
from entitlements.localization import fill, format_day, format_money, format_number, say_money
from entitlements.money import Money
from entitlements.summary_texts import (
    BENEFITS,
    CHANNELS,
    INCIDENTS,
    SENTENCES,
    SPEECH_SENTENCES,
    SUPPORT_LEVELS,
)
from entitlements.translations import translate
from entitlements.zones import UTC, local_day

SERIAL_GROUP = 4  # characters said together before a pause


class Speech(msgspec.Struct, frozen=True):
    """The summary for the ear: `text` for any speech engine, `ssml` for a voice platform."""

    text: str
    ssml: str


class _Screen:
    """How each value is written on screen."""

    def day(self, value: dt.date, locale: str) -> str:
        return format_day(value, locale)

    def money(self, value: Money, locale: str) -> str:
        return format_money(value, locale)

    def number(self, value: int, locale: str) -> str:
        return format_number(value, locale)


class _Ear(_Screen):
    """Plain text for a speech engine."""

    def money(self, value: Money, locale: str) -> str:
        return say_money(value, locale)


SCREEN, EAR = _Screen(), _Ear()


def serial_groups(serial: str) -> list[str]:
    return [serial[i : i + SERIAL_GROUP] for i in range(0, len(serial), SERIAL_GROUP)]


def _spoken_serial(groups: list[str]) -> str:
    """`C 0 2 X, K 1 J N`: each character said alone, a pause between groups."""
    return ", ".join([" ".join(group) for group in groups])


@lru_cache(maxsize=1024)
def speech_language(locale: str, time_zone: str = UTC) -> str:
    """The BCP 47 tag a voice platform expects: the language as spoken where the customer's clock
    is, when it is official there and most people speak it (ar in Asia/Riyadh → ar-SA; not the
    Swedish of Finland, which voice platforms seldom have), else its likeliest region (sv → sv-SE,
    ar → ar-EG)."""
    territory = get_global("zone_territories").get(time_zone)
    spoken = get_territory_language_info(territory).get(locale) if territory else None
    if spoken and spoken.get("official_status") and float(spoken.get("population_percent") or 0) >= 50:
        return f"{locale}-{territory}"
    likely = get_global("likely_subtags").get(locale, locale)
    parts = likely.split("_")
    region = next((p for p in parts[1:] if len(p) == 2 and p.isupper()), None)
    return f"{locale}-{region}" if region else locale


# How a contract can have ended, each the key of the sentence a check says of it.
_ENDINGS = frozenset({"cancelled", "lapsed", "chargeback", "expired", "abandoned"})


def how_it_ended(status: str, plan_name: str, ended_day: str, locale: str) -> str | None:
    """What a check says of a contract that ended (`ended_day` formatted): for a page that still
    shows the contract, such as the portal's proof of coverage. None while it has not ended."""
    return (
        _sentence(status, SENTENCES[status], locale, plan=plan_name, date=ended_day)
        if status in _ENDINGS
        else None
    )


def _sentence(key: str, source: str, locale: str, **values: str) -> str:
    template = translate(locale, key, source)
    incident = values.get("incident")
    if incident and not template.startswith("{incident}"):
        values["incident"] = incident[:1].lower() + incident[1:]  # a name mid-sentence
    return fill(template, **values)


def _sentences(
    voice: _Screen,
    decision: Decision,
    locale: str,
    plan_name: str | None,
    starts_at: dt.datetime | None,
    ended_at: dt.datetime | None,
    time_zone: str,
) -> list[str]:
    incident = translate(locale, "incident", INCIDENTS[decision.incident]) if decision.incident else ""
    plan = plan_name or ""

    def say(key: str, **values: str) -> str:
        return _sentence(key, SENTENCES[key], locale, **values)

    def day(value: dt.datetime | None) -> str:
        return voice.day(local_day(value, time_zone), locale) if value else ""

    if not decision.covered:
        reason = decision.reason or Reason.NO_CONTRACT
        date = {
            Reason.NOT_YET_STARTED: starts_at,
            Reason.WAITING_PERIOD: decision.waiting_until,
            Reason.PAST_DUE_GRACE: decision.grace_until,
            Reason.EXPIRED: ended_at,
            Reason.MANUFACTURER_WARRANTY: decision.warranty_until,
        }.get(reason)
        key = reason.value
        if reason is Reason.MANUFACTURER_WARRANTY and decision.incident not in WARRANTY_KINDS:
            key = "after_warranty"  # the warranty does not repair it: the plan's cover begins later
        if reason is Reason.LIMIT_REACHED and decision.remaining_claims != 0:
            key = "amount_reached"  # its claims may have no limit: the amount for repairs is spent
        return [say(key, plan=plan, date=day(date), incident=incident)]

    parts = [say("covered", plan=plan, end=day(decision.period_end))]
    if decision.incident is not None:
        if decision.deductible is not None and decision.deductible.amount > 0:
            deductible = voice.money(decision.deductible, locale)
            parts.append(say("incident_covered", incident=incident, deductible=deductible))
        else:
            parts.append(say("incident_no_deductible", incident=incident))
    if decision.remaining_claims is not None:
        parts.append(say("claims_left", count=voice.number(decision.remaining_claims, locale)))
    if decision.remaining_aggregate is not None:
        parts.append(say("aggregate_left", amount=voice.money(decision.remaining_aggregate, locale)))
    for benefit in decision.benefits:
        name = translate(locale, "benefit", BENEFITS[benefit.kind])
        count = voice.number(benefit.remaining, locale)
        if benefit.fee is not None:
            parts.append(
                say("benefit_left_fee", benefit=name, count=count, fee=voice.money(benefit.fee, locale))
            )
        else:
            parts.append(say("benefit_left", benefit=name, count=count))
    if decision.support_level is not None:
        level, channels = support_words(decision.support_level, decision.support_channels, locale)
        parts.append(say("support_level", level=level, channels=channels))
    return parts


def support_words(level: SupportLevel, channels: Sequence[SupportChannel], locale: str) -> tuple[str, str]:
    """A support level's name and its channels as a list (`phone and chat`), in `locale`."""
    names = [translate(locale, "channel", CHANNELS[c]) for c in channels]
    return translate(locale, "support_level_name", SUPPORT_LEVELS[level]), format_list(names, locale=locale)


# A summary depends on the decision's facts, not on which contract or instant it was made for:
# products sold the same day under one plan share theirs. Remembered, bounded (a check renders
# one per product, and speech is four times a screen summary's cost).
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _facts_only(decision: Decision) -> Decision:
    return msgspec.structs.replace(decision, contract_id=None, status=None, at=_EPOCH)


def summarize(
    decision: Decision,
    locale: str,
    *,
    plan_name: str | None,
    starts_at: dt.datetime | None = None,
    ended_at: dt.datetime | None = None,
    time_zone: str = UTC,
) -> str:
    """Dates are the days in `time_zone`, the customer's."""
    return _paragraph(SCREEN, _facts_only(decision), locale, plan_name, starts_at, ended_at, time_zone)


@lru_cache(maxsize=65_536)
def _paragraph(
    voice: _Screen,
    decision: Decision,
    locale: str,
    plan_name: str | None,
    starts_at: dt.datetime | None,
    ended_at: dt.datetime | None,
    time_zone: str,
) -> str:
    return " ".join(_sentences(voice, decision, locale, plan_name, starts_at, ended_at, time_zone))


def speak(
    decision: Decision,
    locale: str,
    *,
    plan_name: str | None,
    starts_at: dt.datetime | None = None,
    ended_at: dt.datetime | None = None,
    serial: str | None = None,
    time_zone: str = UTC,
) -> Speech:
    """The summary for the ear; with the product's serial or IMEI said first, in groups, so the
    caller can check it is their product.

    The SSML is the same text, escaped, with the serial and the dates marked up in place."""
    text, ssml = _spoken(_facts_only(decision), locale, plan_name, starts_at, ended_at, time_zone)
    if serial:
        before, after, ssml_before, ssml_after = _serial_sentence(locale)
        groups = serial_groups(serial)
        text = f"{before}{_spoken_serial(groups)}{after} {text}"
        ssml = f"{ssml_before}{_ssml_serial(groups)}{ssml_after} {ssml}"
    return Speech(text, f'<speak xml:lang="{speech_language(locale, time_zone)}">{ssml}</speak>')


@lru_cache(maxsize=64)
def _serial_sentence(locale: str) -> tuple[str, str, str, str]:
    """The words before and after the serial in "Serial number {serial}.", then both escaped."""
    before, _, after = translate(locale, "speech_serial", SPEECH_SENTENCES["speech_serial"]).partition(
        "{serial}"
    )
    return before, after, escape(before), escape(after)


@lru_cache(maxsize=65_536)
def _spoken(
    decision: Decision,
    locale: str,
    plan_name: str | None,
    starts_at: dt.datetime | None,
    ended_at: dt.datetime | None,
    time_zone: str,
) -> tuple[str, str]:
    """The spoken paragraph, and its SSML body, without the serial."""
    text = _paragraph(EAR, decision, locale, plan_name, starts_at, ended_at, time_zone)
    ssml = escape(text)
    instants = (
        decision.period_end,
        decision.waiting_until,
        decision.grace_until,
        decision.warranty_until,
        starts_at,
        ended_at,
    )
    # Each day as the text writes it, marked up longest first: "1 december 2026" is also inside
    # "11 december 2026", which a replacement in any order turned into "1<say-as>2026-12-01…" (in
    # an order that changed from process to process). Every day the text holds is one of these.
    days = {escape(format_day(day, locale)): day for day in (local_day(i, time_zone) for i in instants if i)}
    for written in sorted(days, key=len, reverse=True):
        ssml = ssml.replace(written, _ssml_day(days[written]))
    return text, ssml


def _ssml_day(day: dt.date) -> str:
    return f'<say-as interpret-as="date" format="ymd">{day.isoformat()}</say-as>'


def _ssml_serial(groups: list[str]) -> str:
    """Each group said character by character, a short pause between groups. A serial is letters,
    digits and dashes as a rule: only one that holds what XML marks up is escaped."""
    if any("&" in group or "<" in group or ">" in group for group in groups):
        groups = [escape(group) for group in groups]
    return (
        '<say-as interpret-as="characters">'
        + '</say-as><break strength="weak"/><say-as interpret-as="characters">'.join(groups)
        + "</say-as>"
    )
