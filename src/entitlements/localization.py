"""The caller's language: negotiation and locale-aware formatting (Babel/CLDR)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from functools import lru_cache
from string import Formatter

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, get_currency_name, get_currency_unit_pattern

from entitlements.catalog import DEFAULT_LOCALE, LOCALES
from entitlements.money import Money, exponent

# Tags that name one of our languages under another code.
_ALIASES = {"tl": "fil"}


def normalize_locale(tag: str) -> str | None:
    """`fil-PH`, `tl`, `AR_sa` → a supported locale, or None."""
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    primary = _ALIASES.get(primary, primary)
    return primary if primary in LOCALES else None


CUSTOMER = "customer"  # `locale=customer`: the language the customer chose


def negotiate_locale(explicit: str | None, accept_language: str | None) -> str:
    """An explicit choice wins; then Accept-Language by q-value; then English."""
    return caller_choice(explicit, accept_language) or DEFAULT_LOCALE


def caller_choice(explicit: str | None, accept_language: str | None) -> str | None:
    """The language the caller asked for: `locale=`, then Accept-Language by q-value; None when
    they asked for none we have, or for the customer's (`locale=customer`)."""
    if explicit:
        if explicit.strip().lower() == CUSTOMER:
            return None
        chosen = normalize_locale(explicit)
        if chosen:
            return chosen
    if accept_language:
        ranked: list[tuple[float, int, str]] = []
        for position, item in enumerate(accept_language.split(",")):
            tag, _, params = item.partition(";")
            quality = 1.0
            params = params.strip().lower()  # `Q=0.5` is `q=0.5`
            if params.startswith("q="):
                try:
                    quality = float(params[2:])
                except ValueError:
                    continue
            chosen = normalize_locale(tag)
            if chosen and quality > 0:
                ranked.append((-quality, position, chosen))
        if ranked:
            return min(ranked)[2]
    return None


@lru_cache(maxsize=32)
def _babel_locale(locale: str) -> Locale:
    return Locale.parse(locale)


# Formatting is pure and Babel's pattern machinery costs ~100 µs a call; checks format the same
# few amounts and dates over and over, so the results are remembered (bounded).
# Where CLDR writes a currency by its ISO code, it runs the code into the number ("SEK999.00");
# a no-break space keeps the two apart and together.
_CODE_THEN_DIGIT = re.compile(r"^([A-Z]{3})(?=[\d\u0966-\u096f])")
_DIGIT_THEN_CODE = re.compile(r"(?<=\d)([A-Z]{3})$")


@lru_cache(maxsize=65_536)
def _money_text(amount: int, currency: str, locale: str) -> str:
    text = format_currency(Money(amount, currency).to_decimal(), currency, locale=_babel_locale(locale))
    return _DIGIT_THEN_CODE.sub("\u00a0\\1", _CODE_THEN_DIGIT.sub("\\1\u00a0", text))


def format_money(money: Money, locale: str) -> str:
    return _money_text(money.amount, money.currency, locale)


# Arabic counts a noun by its number's plural category (few: 3–10, many: 11–99, by the last two
# digits), and CLDR gives those forms for some currencies (the Egyptian pound: "جنيهات مصرية",
# "جنيهًا مصريًا") but one form for the others: "99 ريال سعودي" where Arabic says "99 ريالًا
# سعوديًا". The forms of the currencies Arabic-speaking customers pay in, as CLDR writes the
# pound's; "one" and "other" (100 and up, fractions) keep CLDR's name.
_ARABIC_COUNTED: dict[str, dict[str, str]] = {
    "SAR": {
        "one": "ريال سعودي واحد",
        "two": "ريالان سعوديان",
        "few": "ريالات سعودية",
        "many": "ريالًا سعوديًا",
    },
    "AED": {
        "one": "درهم إماراتي واحد",
        "two": "درهمان إماراتيان",
        "few": "دراهم إماراتية",
        "many": "درهمًا إماراتيًا",
    },
    "USD": {
        "one": "دولار أمريكي واحد",
        "two": "دولاران أمريكيان",
        "few": "دولارات أمريكية",
        "many": "دولارًا أمريكيًا",
    },
    # The rupee is feminine: CLDR's "روبية هندي" does not agree with it.
    "INR": {
        "one": "روبية هندية واحدة",
        "two": "روبيتان هنديتان",
        "few": "روبيات هندية",
        "many": "روبيةً هنديةً",
        "other": "روبية هندية",
    },
}
# Arabic says one and two by the noun alone, its number in its form ("ريالان سعوديان", "ريال
# سعودي واحد"), never "2 ريالان".
_SAID_ALONE = frozenset({"one", "two"})


# A hundredth's name where a language has one for the currency, by the plural category its count
# takes (CLDR names no minor units): "49 US dollars and 50 cents", where a speech engine read
# "49.50" as "forty-nine point five zero". A category not listed takes "other"'s form.
_HUNDREDTHS: dict[str, dict[str, dict[str, str]]] = {
    "en": {
        "USD": {"one": "cent", "other": "cents"},
        "EUR": {"one": "cent", "other": "cents"},
        "PHP": {"one": "centavo", "other": "centavos"},
        "INR": {"one": "paisa", "other": "paise"},
        "SEK": {"other": "öre"},
        "SAR": {"one": "halala", "other": "halalas"},
        "GBP": {"one": "penny", "other": "pence"},
    },
    "sv": {"SEK": {"other": "öre"}, "USD": {"other": "cent"}, "EUR": {"other": "cent"}},
    "hi": {"INR": {"one": "पैसा", "other": "पैसे"}, "USD": {"other": "सेंट"}},
    "fil": {"PHP": {"other": "sentimo"}, "USD": {"other": "sentimo"}},
    "vi": {"USD": {"other": "xu"}},
    "ar": {
        "SAR": {"one": "هللة واحدة", "two": "هللتان", "few": "هللات", "many": "هللةً", "other": "هللة"},
        "USD": {"one": "سنت واحد", "two": "سنتان", "few": "سنتات", "many": "سنتًا", "other": "سنت"},
        "AED": {"one": "فلس واحد", "two": "فلسان", "few": "فلوس", "many": "فلسًا", "other": "فلس"},
    },
}
# The two amounts said together: "49 US dollars and 50 cents".
_AND = {
    "en": "{} and {}",
    "sv": "{} och {}",
    "hi": "{} और {}",
    "fil": "{} at {}",
    "vi": "{} và {}",
    "ar": "{} و{}",
}


@lru_cache(maxsize=65_536)
def _spoken_money(amount: int, currency: str, locale: str) -> str:
    value = Money(amount, currency).to_decimal()
    babel_locale = _babel_locale(locale)
    hundredths = _HUNDREDTHS.get(babel_locale.language, {}).get(currency)
    if hundredths is not None and exponent(currency) == 2 and amount % 100:
        whole, cents = divmod(amount, 100)
        category = babel_locale.plural_form(cents)
        form = hundredths.get(category) or hundredths["other"]
        alone = babel_locale.language == "ar" and category in _SAID_ALONE
        said = form if alone else f"{format_decimal(cents, locale=babel_locale)} {form}"
        return (
            _AND[babel_locale.language].format(_spoken_money(whole * 100, currency, locale), said)
            if whole
            else said
        )
    count: Decimal | int = value
    if value == value.to_integral_value():  # "299 Swedish kronor": no zero decimals to read out
        count = int(value)
        number = format_decimal(count, locale=babel_locale)
    else:
        number = format_decimal(value, format="#,##0.00", locale=babel_locale)
    name = get_currency_name(currency, count=count, locale=babel_locale)
    if babel_locale.language == "ar" and currency in _ARABIC_COUNTED:
        category = babel_locale.plural_form(count)
        name = _ARABIC_COUNTED[currency].get(category, name)
        if category in _SAID_ALONE and isinstance(count, int):
            return name
    return get_currency_unit_pattern(currency, count=count, locale=babel_locale).format(number, name)


def say_money(money: Money, locale: str) -> str:
    """An amount as it is said: the currency's name in the locale's plural form, never a symbol
    or a code (which speech engines drop or spell out), and no decimals when they are zero."""
    return _spoken_money(money.amount, money.currency, locale)


# Vietnamese writes a date "ngày 5 tháng 3 năm 2028"; CLDR's long form gives "5 tháng 3, 2028".
_DAY_PATTERNS = {"vi": "'ngày' d 'tháng' M 'năm' y"}


@lru_cache(maxsize=16_384)
def format_day(day: dt.date, locale: str) -> str:
    return format_date(day, format=_DAY_PATTERNS.get(locale, "long"), locale=_babel_locale(locale))


@lru_cache(maxsize=4_096)
def format_number(value: int, locale: str) -> str:
    return format_decimal(value, locale=_babel_locale(locale))


_MARKS = "\u200e\u200f"  # the direction marks an amount or a template may put beside a stop


@lru_cache(maxsize=1_024)
def _pieces(template: str) -> tuple[tuple[str, str | None], ...]:
    """A template's literal text and the field after each (None: none, after an escaped brace or
    at the end): plain fields, as every template here has them."""
    pieces = []
    for literal, field, spec, conversion in Formatter().parse(template):
        if spec or conversion:
            raise ValueError(f"a template's fields are plain names: {template!r}")
        pieces.append((literal, field))
    return tuple(pieces)


def fill(template: str, **values: str) -> str:
    """The template with its fields filled. Where a value ends in a stop (an amount in "ر.س.", a
    plan named "Care Inc.") and the template's sentence stops right after it, one stop is
    written; a value itself is written as it is (a plan named "Protect..." keeps its three)."""
    out: list[str] = []
    value = ""  # the value the text so far ends in, if it ends in one
    for literal, field in _pieces(template):
        if literal:
            out.append(_after(value, literal) if value else literal)
            value = ""
        if field is not None and values[field]:
            value = values[field]
            out.append(value)
    return "".join(out)


def _after(value: str, literal: str) -> str:
    """The literal that follows a value, without its leading stop when the value ends in one (a
    direction mark beside either stop stays)."""
    head = 1 if literal.startswith(tuple(_MARKS)) else 0
    if value.rstrip(_MARKS).endswith(".") and literal[head : head + 1] == ".":
        return literal[:head] + literal[head + 1 :]
    return literal


def load_locale_data() -> None:
    """Read each supported locale's CLDR data now rather than on the first check in it."""
    for locale in LOCALES:
        format_money(Money(100, "USD"), locale)
        format_day(dt.date(2000, 1, 1), locale)
        format_number(1, locale)
