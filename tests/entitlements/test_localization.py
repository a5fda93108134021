"""Amounts and dates as each language writes them."""

import datetime as dt
import re

import pytest

from api.pages import TEMPLATES
from api.pages.common import environment, words
from entitlements.catalog import LOCALES, CoverageKind
from entitlements.coverage import Decision, Reason
from entitlements.localization import fill, format_day, format_money, say_money
from entitlements.money import Money
from entitlements.summaries import speak, summarize
from entitlements.summary_texts import EMAILS, SENTENCES
from entitlements.translations import translate

CURRENCIES = ("USD", "PHP", "INR", "SEK", "SAR", "VND", "EUR")


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("currency", CURRENCIES)
def test_a_currency_code_never_runs_into_its_number(locale: str, currency: str) -> None:
    text = format_money(Money(99900, currency), locale)
    assert not re.search(r"[A-Z]{3}\d|\d[A-Z]{3}", text), text


def test_vietnamese_dates_read_ngay_thang_nam() -> None:
    assert format_day(dt.date(2028, 3, 5), "vi") == "ngày 5 tháng 3 năm 2028"


# A screen repair covered with a deductible in riyals, whose Arabic symbol ends in a stop.
SCREEN_IN_RIYALS = Decision(
    covered=True,
    reason=None,
    contract_id="ctr",
    status=None,
    at=dt.datetime(2026, 11, 27, tzinfo=dt.UTC),
    incident=CoverageKind.SCREEN,
    deductible=Money(19900, "SAR"),
    period_end=dt.datetime(2028, 11, 27, tzinfo=dt.UTC),
)


def test_an_amount_ending_in_a_stop_does_not_double_the_sentences_stop() -> None:
    text = summarize(SCREEN_IN_RIYALS, "ar", plan_name="حماية الهاتف")
    assert "ر.س" in text
    assert not re.search("\\.[\u200e\u200f]?\\.", text), text


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("plan", ["Protect...", "Care Inc.", "A..B", ".."])
def test_a_plan_name_is_said_and_shown_as_it_is_written(locale: str, plan: str) -> None:
    """Only a value's stop that meets its sentence's stop merges with it: a plan's own stops stay."""
    assert plan in summarize(SCREEN_IN_RIYALS, locale, plan_name=plan)
    assert plan in speak(SCREEN_IN_RIYALS, locale, plan_name=plan).text


@pytest.mark.parametrize(
    ("template", "value", "filled"),
    [
        ("Pay {amount}.", "99 ر.س.", "Pay 99 ر.س."),
        ("Pay {amount}.", "99 ر.س.\u200f", "Pay 99 ر.س.\u200f"),
        ("Pay {amount}\u200f.", "99 ر.س.", "Pay 99 ر.س.\u200f"),
        ("Pay {amount}.", "99 SEK", "Pay 99 SEK."),
        ("{amount}. Then more.", "Inc.", "Inc. Then more."),
        ("Under {plan} until then.", "Protect...", "Under Protect... until then."),
        ("{{literal}} {plan}.", "x", "{literal} x."),
        ("{plan}}}.", "Inc.", "Inc.}."),
        ("{plan}.", "", "."),
    ],
)
def test_a_value_ending_in_a_stop_merges_with_the_sentences_stop_only(
    template: str, value: str, filled: str
) -> None:
    field = "amount" if "{amount}" in template else "plan"
    assert fill(template, **{field: value}) == filled


def test_an_empty_value_leaves_the_stop_of_the_value_before_it_to_merge() -> None:
    assert fill("{plan}{note}.", plan="Care Inc.", note="") == "Care Inc."
    assert fill("{plan} {note}.", plan="Care Inc.", note="") == "Care Inc. ."


def test_q_values_are_read_in_any_case() -> None:
    from entitlements.localization import negotiate_locale

    assert negotiate_locale(None, "en;Q=0.1, sv;Q=0.9") == "sv"


@pytest.mark.parametrize(
    ("amount", "currency", "said"),
    [
        (9900, "SAR", "99 ريالًا سعوديًا"),  # 11–99: the singular, accusative
        (198000, "SAR", "1,980 ريالًا سعوديًا"),  # by the last two digits
        (500, "SAR", "5 ريالات سعودية"),  # 3–10: the plural
        (10300, "SAR", "103 ريالات سعودية"),
        (100000, "SAR", "1,000 ريال سعودي"),  # 100 and up: CLDR's own name
        (4950, "SAR", "49 ريالًا سعوديًا و50 هللةً"),  # riyals and halalas, each in its form
        (200, "USD", "دولاران أمريكيان"),  # two: the dual alone, its number in its form
        (100, "SAR", "ريال سعودي واحد"),  # one: the noun, then واحد
        (102, "SAR", "ريال سعودي واحد وهللتان"),  # never "1 ريال … و2 هللتان"
        (101, "SAR", "ريال سعودي واحد وهللة واحدة"),
        (150000, "INR", "1,500 روبية هندية"),  # the rupee is feminine: CLDR wrote هندي
        (300, "INR", "3 روبيات هندية"),
        (5000, "EGP", "50 جنيهًا مصريًا"),  # CLDR's own forms
    ],
)
def test_arabic_says_a_currency_in_the_form_its_number_takes(amount: int, currency: str, said: str) -> None:
    assert say_money(Money(amount, currency), "ar") == said


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "said"),
    [
        (4950, "USD", "en", "49 US dollars and 50 cents"),  # never "forty-nine point five zero"
        (1, "USD", "en", "1 cent"),
        (4950, "SEK", "sv", "49 svenska kronor och 50 öre"),
        (101, "INR", "hi", "1 भारतीय रुपया और 1 पैसा"),
        (4950, "PHP", "fil", "49 piso ng Pilipinas at 50 sentimo"),
        (4950, "USD", "vi", "49 đô la Mỹ và 50 xu"),
        (310, "SAR", "ar", "3 ريالات سعودية و10 هللات"),
        (4950, "AED", "ar", "49 درهمًا إماراتيًا و50 فلسًا"),
        (4950, "GBP", "en", "49 British pounds and 50 pence"),  # was "49.50 British pounds"
        (1, "GBP", "en", "1 penny"),
        (4950, "CHF", "en", "49.50 Swiss francs"),  # no hundredth's name known: as before
        (9900, "USD", "en", "99 US dollars"),
    ],
)
def test_an_amount_with_cents_is_said_as_two_amounts(
    amount: int, currency: str, locale: str, said: str
) -> None:
    assert say_money(Money(amount, currency), locale) == said


@pytest.mark.parametrize("locale", LOCALES)
def test_a_spent_amount_for_repairs_is_not_called_a_limit_on_claims(locale: str) -> None:
    """A plan with no limit on its number of claims whose amount for repairs is spent: said as
    the amount (Swedish, Vietnamese and Arabic said a limit on the number of claims)."""
    at = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    spent = Decision(False, Reason.LIMIT_REACHED, "ctr", None, at, remaining_aggregate=Money(0, "USD"))
    counted = Decision(False, Reason.LIMIT_REACHED, "ctr", None, at, remaining_claims=0)
    said_spent, said_counted = (summarize(d, locale, plan_name="P") for d in (spent, counted))
    assert said_spent == fill(translate(locale, "amount_reached", SENTENCES["amount_reached"]), plan="P")
    assert said_counted == fill(translate(locale, "limit_reached", SENTENCES["limit_reached"]), plan="P")
    assert said_spent != said_counted
    assert speak(spent, locale, plan_name="P").text.endswith(said_spent)


def render_page(key: str, locale: str, **values: str) -> str:
    """A page text as the templates write one, filled with `values`."""
    fields = ", ".join(f"{name}={name}" for name in values)
    return environment().from_string(f"{{{{ fill(t.{key}, {fields}) }}}}").render(t=words(locale), **values)


def test_a_page_fills_an_amount_ending_in_a_stop_with_one_stop() -> None:
    """The portal's quote in Arabic ended "ر.س.‏." (the page filled its text with `format`)."""
    shown = format_money(Money(123450, "SAR"), "ar")
    html = render_page("portal_cancel_quote", "ar", amount=shown)
    assert shown.rstrip("\u200e\u200f") in html
    assert not re.search("\\.[\u200e\u200f]?\\.", html), html
    formatted = [p.name for p in TEMPLATES.rglob("*.html") if ".format(" in p.read_text()]
    assert formatted == []  # every page text with a value is filled as this one


def test_a_vietnamese_letter_says_its_day_once() -> None:
    """Vietnamese days begin with "ngày"; the letters said "đến hết ngày ngày 5 tháng 3 năm 2028"."""
    day = format_day(dt.date(2028, 3, 5), "vi")
    for kind in ("email_satisfaction_ask", "email_info_link"):
        text = fill(translate("vi", kind, EMAILS[kind]), date=day, link="https://x.example/r")
        assert "ngày ngày" not in text and day in text, text
