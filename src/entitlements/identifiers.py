"""Normalising how people type the things we look products and customers up by."""

from __future__ import annotations

import re

import phonenumbers

from entitlements.errors import InvalidInput

_SERIAL_NOISE = re.compile(r"[\s\-_./]")
_SERIAL = re.compile(r"^[A-Z0-9]{3,40}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


def normalize_serial(raw: str) -> str:
    """`ab-123 ` and `AB123` are one serial: case, spaces and separators do not count."""
    serial = _SERIAL_NOISE.sub("", raw.strip()).upper()
    if not _SERIAL.match(serial):
        raise InvalidInput("a serial is 3 to 40 letters and digits", field="serial")
    return serial


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
    imei = re.sub(r"[\s\-./]", "", raw.strip())
    if not (imei.isascii() and imei.isdigit() and len(imei) == 15):
        raise InvalidInput("an IMEI is 15 digits", field="imei")
    if not luhn_valid(imei):
        raise InvalidInput("the IMEI's check digit is wrong", field="imei")
    return imei


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
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
