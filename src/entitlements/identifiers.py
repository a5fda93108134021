"""Normalising how people type the things we look products and customers up by."""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import phonenumbers

from entitlements.errors import InvalidInput
from entitlements.fields import REF_LENGTH

_SERIAL_NOISE = re.compile(r"[\s\-_./]")
_SERIAL = re.compile(r"^[A-Z0-9]{3,40}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
# Characters that show nothing: a zero-width space, a word joiner, a byte-order mark. (Zero-width
# joiners and non-joiners are left alone: Devanagari and Arabic script spell with them.)
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad"))  # and a soft hyphen, pasted
# Marks that reorder what follows on screen, which lets a name show other text than it holds.
_DIRECTION = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def plain_identifier(raw: str) -> str:
    """An identifier as it was meant, however it was typed: full-width forms and digits of any
    script (Arabic-Indic `٣`, Devanagari `३`) as ASCII, any dash as `-`, invisible and format
    characters dropped."""
    if raw.isascii():  # what nearly every caller sends, and the check's hot path
        return raw
    chars = []
    for char in unicodedata.normalize("NFKC", raw):
        category = unicodedata.category(char)
        if category == "Nd":
            chars.append(str(unicodedata.decimal(char)))
        elif category == "Pd" or char == "\u2212":  # dashes, and the minus sign typed for one
            chars.append("-")
        elif category != "Cf":
            chars.append(char)
    return "".join(chars)


def normalize_serial(raw: str) -> str:
    """`ab-123 `, `ＡＢ１２３` and `AB123` are one serial: width, script of digits, case, spaces
    and separators do not count."""
    serial = _SERIAL_NOISE.sub("", plain_identifier(raw).strip()).upper()
    if not _SERIAL.match(serial):
        raise InvalidInput("a serial is 3 to 40 letters and digits", field="serial")
    return serial


_JOINERS = "\u200c\u200d"  # ZWNJ, ZWJ: Devanagari and Arabic script spell with them
# What no typed text holds: private-use characters, lone surrogates, noncharacters (U+FDD0–FDEF,
# U+xFFFE, U+xFFFF), format characters besides the joiners (a tag character, an invisible
# operator), line and paragraph separators, and characters unassigned in this Python's Unicode
# outside the emoji blocks (a newer emoji, U+1FA77, is unassigned to it and kept). Tags are kept
# inside a subdivision flag's sequence (🏴 + two to six letters or digits + end), and the format
# characters that show, as number signs, in Arabic, Syriac and Mongolian text.
_HIDDEN = frozenset({"Co", "Cs", "Cf", "Cn", "Zl", "Zp"})
_SHOWN_FORMATS = frozenset("\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u08e2\u180e")
_FLAG = re.compile(
    "\U0001f3f4[\U000e0061-\U000e007a]{2}[\U000e0030-\U000e0039\U000e0061-\U000e007a]{1,4}\U000e007f"
)
# Fillers that a font draws as nothing, though Unicode calls them letters or symbols.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _emoji_block(char: str) -> bool:
    return 0x1F000 <= ord(char) <= 0x1FBFF


def _hidden(char: str) -> bool:
    code = ord(char)
    if 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE:  # noncharacters
        return True
    category = unicodedata.category(char)
    if category == "Cn":
        return not _emoji_block(char)
    return category in _HIDDEN and char not in _JOINERS and char not in _SHOWN_FORMATS


def _shows(char: str) -> bool:
    """Whether a character shows something on its own (a mark needs a letter to sit on)."""
    if char in _BLANK_LETTERS:
        return False
    return unicodedata.category(char)[0] in "LNPS" or (
        unicodedata.category(char) == "Cn" and _emoji_block(char)
    )


def _pictographic(char: str) -> bool:
    """An emoji, or what an emoji sequence puts beside one (VS16, a skin tone)."""
    return char == "\ufe0f" or _emoji_block(char) or unicodedata.category(char) == "So"


def _script(char: str) -> str | None:
    """A letter's or mark's script, as its Unicode name begins (DEVANAGARI, ARABIC, LATIN)."""
    if unicodedata.category(char)[0] not in "LM":
        return None
    return unicodedata.name(char, "").split(" ")[0] or None


def _joiners_inside_words(text: str) -> bool:
    """Every zero-width (non-)joiner sits between two letters or marks of one script, or a
    zero-width joiner between two emoji (a family, a rainbow flag: 👨‍👩‍👧, 🏳️‍🌈)."""
    for index, char in enumerate(text):
        if char in _JOINERS:
            before_char = text[index - 1] if index > 0 else ""
            after_char = text[index + 1] if index + 1 < len(text) else ""
            if (
                char == "\u200d"
                and before_char
                and after_char
                and _pictographic(before_char)
                and _pictographic(after_char)
            ):
                continue
            before = _script(before_char) if before_char else None
            after = _script(after_char) if after_char else None
            if before is None or before != after:
                return False
    return True


def clean_text(raw: str, field: str, max_length: int) -> str:
    """Text a person typed, as stored and compared: NFC (so a decomposed `é` is the composed one),
    without invisible characters or surrounding space; refused when it holds direction marks or
    control characters, or nothing at all."""
    text = unicodedata.normalize("NFC", raw).translate(_INVISIBLE).strip()
    if _DIRECTION.search(text):
        raise InvalidInput(f"{field} may not hold direction marks such as U+202E", field=field)
    if any(unicodedata.category(char) == "Cc" for char in text):
        raise InvalidInput(f"{field} may not hold control characters", field=field)
    if "\ufffd" in text:  # what a decoder puts in place of bytes that were not UTF-8
        raise InvalidInput(f"{field} holds U+FFFD: it was not sent as UTF-8", field=field)
    if any(_hidden(char) for char in _FLAG.sub("", text)):
        raise InvalidInput(
            f"{field} may not hold invisible, private-use, unassigned or noncharacter code points (such"
            " as U+E0041 or U+FFFF)",
            field=field,
        )
    if not text.isascii() and not _joiners_inside_words(text):
        raise InvalidInput(
            f"{field} may hold a zero-width joiner (U+200C, U+200D) only inside a word of one script",
            field=field,
        )
    if not any(_shows(char) for char in text):  # marks alone, or fillers, show nothing
        raise InvalidInput(f"{field} may not be blank", field=field)
    if len(text) > max_length:  # normalizing can lengthen text (U+0958 is two characters in NFC)
        raise InvalidInput(f"{field} is over {max_length} characters", field=field)
    return text


def clean_reference(raw: str) -> str:
    """A caller's reference (a ticket, a booking, a payment), as stored and compared: NFC and
    trimmed, so that one typed two ways is one."""
    return clean_text(raw, "reference", REF_LENGTH)


def ascii_digits(text: str) -> bool:
    """Digits `int` reads as a number here: not "²", which `str.isdigit` counts, nor "٣" or "１"."""
    return text.isascii() and text.isdigit()


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def normalize_imei(raw: str) -> str:
    """15 digits whose last is the Luhn check digit (separators allowed)."""
    imei = re.sub(r"[\s\-./]", "", plain_identifier(raw).strip())
    if not (imei.isascii() and imei.isdigit() and len(imei) == 15):
        raise InvalidInput("an IMEI is 15 digits", field="imei")
    if not luhn_valid(imei):
        raise InvalidInput("the IMEI's check digit is wrong", field="imei")
    return imei


# Babel's territories less what ISO 3166-1 does not assign: regions (EU, EZ, UN, QO), private-use
# and test codes (XA, XB, XK, ZZ) and the exceptionally reserved ones (AC, CP, CQ, DG, EA, IC, TA).
_NOT_COUNTRIES = frozenset(
    {"EU", "EZ", "UN", "QO", "XA", "XB", "XK", "ZZ", "AC", "CP", "CQ", "DG", "EA", "IC", "TA"}
)


@cache
def iso_countries() -> frozenset[str]:
    """The 249 ISO 3166-1 alpha-2 codes."""
    from babel import Locale

    territories = Locale("en").territories
    return frozenset(
        k
        for k in territories
        if isinstance(k, str) and len(k) == 2 and k.isalpha() and k not in _NOT_COUNTRIES
    )


def check_country(code: str, field: str = "country") -> str:
    if code not in iso_countries():
        raise InvalidInput(f"{code} is not an ISO 3166-1 country code", field=field)
    return code


def normalize_email(raw: str) -> str:
    email = unicodedata.normalize("NFC", raw).translate(_INVISIBLE).strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidInput("not an email address", field="email")
    return email


def normalize_phone(raw: str, country: str | None = None) -> str:
    """E.164 (`+639171234567`); a national number needs the customer's country."""
    try:
        number = phonenumbers.parse(raw, country)
    except phonenumbers.NumberParseException:
        raise InvalidInput("not a phone number (use +<country code><number>)", field="phone") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidInput("not a possible phone number", field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}{'*' * max(len(phone) - 5, 0)}{phone[-2:]}"
