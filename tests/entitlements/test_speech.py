"""Speech for phone bots: every summary variant, in every language, said as people say it."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import unicodedata
import xml.etree.ElementTree as ET

import msgspec
import pytest
from babel.numbers import get_decimal_symbol
from hypothesis import given
from hypothesis import strategies as st

from entitlements.catalog import LOCALES
from entitlements.corpus import COVERED_WITH_DEDUCTIBLE, summary_variants
from entitlements.coverage import Decision, Reason
from entitlements.summaries import serial_groups, speak, speech_language, summarize

AT = dt.datetime(2026, 11, 27, 15, tzinfo=dt.UTC)
END = dt.datetime(2028, 3, 5, tzinfo=dt.UTC)
CURRENCIES = ("USD", "PHP", "INR", "SEK", "SAR", "VND", "EUR")
SERIAL = "C02XK1JNJGH5"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# Voices espeak-ng has (none for Tagalog/Filipino).
ESPEAK = shutil.which("espeak-ng") or "espeak-ng"  # installed by `make test`
ESPEAK_VOICES = {"en": "en", "hi": "hi", "sv": "sv", "ar": "ar", "vi": "vi"}


def parse(ssml: str) -> ET.Element:
    """Our own SSML, made in this process."""
    return ET.fromstring(ssml)  # noqa: S314


def variants(currency: str) -> list[Decision]:
    """Every sentence a summary can say (the corpus's variants), with an amount that has cents
    (USD: a whole one, said without decimals)."""
    deductible = {"USD": 4900, "VND": 2_500_000_00}.get(currency, 19950)
    return [decision for _, decision in summary_variants(currency, deductible)]


def with_deductible(currency: str) -> Decision:
    return dict(summary_variants(currency))[COVERED_WITH_DEDUCTIBLE]


def said(decision: Decision, locale: str, serial: str | None = SERIAL) -> tuple[str, ET.Element]:
    speech = speak(decision, locale, plan_name="Phone Care 24", starts_at=END, ended_at=END, serial=serial)
    return speech.text, parse(speech.ssml)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("currency", CURRENCIES)
def test_speech_holds_no_symbol_code_iso_date_or_zero_decimals(locale: str, currency: str) -> None:
    for decision in variants(currency):
        text, _ = said(decision, locale)
        assert not [c for c in text if unicodedata.category(c) == "Sc"], text
        assert not re.search(r"(?<![A-Za-z])[A-Z]{3}(?![A-Za-z])", text.replace(SERIAL, "")), text
        assert not re.search(r"\d{4}-\d{2}-\d{2}", text), text
        # "199.50" stays; "49.00" (or "49,00", as that locale separates decimals) never
        assert not re.search(rf"\d{re.escape(get_decimal_symbol(locale))}[0\u0660]+(?![\d])", text), text
        if decision.deductible and currency == "USD":  # a whole amount: said without decimals
            assert re.search(r"(?<![\d.,])49(?![\d.,])", text) or "٤٩" in text, text


@pytest.mark.parametrize("locale", LOCALES)
def test_the_speech_says_the_same_facts_as_the_screen(locale: str) -> None:
    """Same sentences, same order: the screen's amounts and dates are the only words that change."""
    for decision in variants("SEK"):
        screen = summarize(decision, locale, plan_name="Phone Care 24", starts_at=END, ended_at=END)
        text, _ = said(decision, locale, serial=None)
        assert screen.count("Phone Care 24") == text.count("Phone Care 24")
        assert len(re.findall(r"[.।]( |$)", screen)) == len(re.findall(r"[.।]( |$)", text)), (screen, text)
        if decision.remaining_claims is not None:
            assert "2" in text


@pytest.mark.parametrize("locale", LOCALES)
def test_the_ssml_names_its_language_and_marks_serials_and_dates(locale: str) -> None:
    for decision in variants("INR"):
        text, ssml = said(decision, locale)
        assert ssml.tag == "speak"
        assert ssml.get(XML_LANG, "").split("-")[0] == locale
        marks = {(e.get("interpret-as"), e.text) for e in ssml.iter("say-as")}
        assert ("characters", "C02X") in marks and ("characters", "JGH5") in marks
        assert "C 0 2 X, K 1 J N, J G H 5" in text
        dates = [e.text for e in ssml.iter("say-as") if e.get("interpret-as") == "date"]
        assert all(d == "2028-03-05" for d in dates)
    _, covered = said(with_deductible("INR"), locale)
    assert [e.get("format") for e in covered.iter("say-as") if e.get("interpret-as") == "date"] == ["ymd"]


@pytest.mark.parametrize("locale", LOCALES)
def test_the_manufacturers_warranty_end_is_marked_as_a_date(locale: str) -> None:
    """Its day differs from every other in the summary: it was left as plain words in the SSML."""
    warranty = next(d for d in variants("USD") if d.reason is Reason.MANUFACTURER_WARRANTY)
    until = msgspec.structs.replace(warranty, warranty_until=dt.datetime(2027, 6, 1, 12, tzinfo=dt.UTC))
    _, ssml = said(until, locale)
    dates = [e.text for e in ssml.iter("say-as") if e.get("interpret-as") == "date"]
    assert dates == ["2027-06-01"], ET.tostring(ssml, encoding="unicode")


@pytest.mark.parametrize("locale", LOCALES)
def test_a_day_whose_words_hold_another_days_is_marked_whole(locale: str) -> None:
    """Cover to 11 December with a waiting period that ended on the 1st: "1 december 2026" is
    inside "11 december 2026", and some processes said the cover ended on the 1st."""
    covered = msgspec.structs.replace(
        with_deductible("SEK"),
        period_end=dt.datetime(2026, 12, 11, 12, tzinfo=dt.UTC),
        waiting_until=dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC),
    )
    _, ssml = said(covered, locale)
    dates = [e.text for e in ssml.iter("say-as") if e.get("interpret-as") == "date"]
    assert dates == ["2026-12-11"], ET.tostring(ssml, encoding="unicode")


def test_voice_platform_tags_carry_a_region() -> None:
    tags = {
        locale: parse(speak(variants("USD")[0], locale, plan_name="x").ssml).get(XML_LANG)
        for locale in LOCALES
    }
    assert tags == {
        "en": "en-US",
        "fil": "fil-PH",
        "hi": "hi-IN",
        "sv": "sv-SE",
        "ar": "ar-EG",
        "vi": "vi-VN",
    }


@given(
    plan=st.text(min_size=1, max_size=30).filter(lambda s: "\x00" not in s and s.isprintable()),
    # A serial is letters, digits and dashes as a rule; one holding what XML marks up is escaped.
    serial=st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-&<>'\"", min_size=3, max_size=40),
)
def test_any_plan_name_and_serial_make_well_formed_ssml(plan: str, serial: str) -> None:
    speech = speak(with_deductible("SAR"), "ar", plan_name=plan, serial=serial)
    root = parse(speech.ssml)
    assert plan in "".join(root.itertext())
    said = [e.text or "" for e in root.iter("say-as") if e.get("interpret-as") == "characters"]
    assert "".join(said) == serial
    assert "".join(serial_groups(serial)) == serial
    assert all(1 <= len(group) <= 4 for group in serial_groups(serial))


@pytest.mark.parametrize("locale", sorted(ESPEAK_VOICES))
def test_espeak_ng_says_the_text_and_the_ssml(locale: str) -> None:
    """Rendered to audio by a real speech engine: neither the text nor the SSML is empty air."""
    decision = with_deductible("PHP")
    speech = speak(decision, locale, plan_name="Phone Care 24", serial=SERIAL)
    for source, flags in ((speech.text, []), (speech.ssml, ["-m"])):
        done = subprocess.run(
            [ESPEAK, "-v", ESPEAK_VOICES[locale], *flags, "--stdout", source],
            capture_output=True,
            timeout=60,
            check=True,
        )
        wav = done.stdout
        assert wav[:4] == b"RIFF" and len(wav) > 44 + 22_050, (locale, len(wav))  # over a second
        assert any(wav[44 + i] not in (0, 255) for i in range(0, len(wav) - 44, 101))


@pytest.mark.parametrize(
    ("locale", "time_zone", "tag"),
    [
        ("ar", "Asia/Riyadh", "ar-SA"),  # a Saudi customer hears a Saudi voice
        ("ar", "Africa/Cairo", "ar-EG"),
        ("ar", "UTC", "ar-EG"),  # nowhere in particular: the language's likeliest region
        ("ar", "America/Chicago", "ar-EG"),  # not an official language there
        ("en", "America/Chicago", "en-US"),
        ("en", "Asia/Manila", "en-PH"),
        ("fil", "Asia/Manila", "fil-PH"),
        ("sv", "Europe/Helsinki", "sv-SE"),  # official in Finland, but few speak it there
        ("ar", "Asia/Jerusalem", "ar-EG"),
        ("ar", "Asia/Dubai", "ar-AE"),
        ("vi", "Europe/Stockholm", "vi-VN"),
    ],
)
def test_a_voice_is_chosen_for_where_the_customer_lives(locale: str, time_zone: str, tag: str) -> None:
    assert speech_language(locale, time_zone) == tag
