"""Signed offers: what checkout may sell, at what price, for which product.

A token is `v1.<payload>.<signature>`, both parts base64url without padding. The payload is
the offer as JSON; the signature is HMAC-SHA256 over `v1.<payload>` with the key named by the
payload's `kid`, so keys can be rotated: sign with the newest, verify with any still listed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Annotated

import msgspec

from entitlements.catalog import (
    CountryCode,
    Ineligibility,
    Plan,
    ProductCategory,
    ProductFacts,
    assess,
)
from entitlements.errors import InvalidOffer
from entitlements.identifiers import check_country
from entitlements.money import Money, check_amount
from entitlements.zones import country_days

TOKEN_VERSION = "v1"


class OfferedProduct(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The product in the cart, as the checkout page describes it."""

    category: ProductCategory
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    price: Money
    purchase_date: dt.date
    country: CountryCode
    serial: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class OfferTerms(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Everything an offer binds. Checkout sells exactly this or nothing."""

    offer_id: str
    kid: str
    plan_code: str
    plan_version: int
    price: Money
    waiting_period_days: int
    product: OfferedProduct
    locale: str
    issued_at: int  # unix seconds
    expires_at: int
    lead_id: str | None = None  # an offer made from a lead: the sale consumes the lead


class OfferKeyring(msgspec.Struct, frozen=True):
    """Signing keys by id; the first signs, all verify."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("at least one offer signing key is required")

    @property
    def signing(self) -> tuple[str, bytes]:
        return self.keys[0]

    def secret(self, kid: str) -> bytes | None:
        return dict(self.keys).get(kid)

    @classmethod
    def parse(cls, spec: str) -> OfferKeyring:
        """`kid1:secret1,kid2:secret2` — the first is the one that signs."""
        keys: list[tuple[str, bytes]] = []
        for item in filter(None, (part.strip() for part in spec.split(","))):
            kid, sep, secret = item.partition(":")
            if not sep or not kid or len(secret) < 32:
                raise ValueError("each offer key is `kid:secret` with a secret of 32+ characters")
            keys.append((kid, secret.encode()))
        return cls(tuple(keys))

    @classmethod
    def from_mapping(cls, keys: Mapping[str, bytes]) -> OfferKeyring:
        return cls(tuple(keys.items()))


def new_offer_id() -> str:
    return "ofr_" + secrets.token_urlsafe(16)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, signed_part: str) -> str:
    return _b64(hmac.new(secret, signed_part.encode("ascii"), hashlib.sha256).digest())


def sign_offer(terms: OfferTerms, keyring: OfferKeyring) -> str:
    kid, secret = keyring.signing
    if terms.kid != kid:
        raise ValueError("offer terms must name the signing key")
    payload = _b64(msgspec.json.encode(terms))
    signed_part = f"{TOKEN_VERSION}.{payload}"
    return f"{signed_part}.{_sign(secret, signed_part)}"


def verify_offer(token: str, keyring: OfferKeyring, now: dt.datetime) -> OfferTerms:
    """The terms a token binds, or `InvalidOffer` if it was altered, expired or unknown."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_VERSION or not token.isascii():  # base64url and dots
        raise InvalidOffer("malformed offer token", field="offer_token")
    signed_part = f"{parts[0]}.{parts[1]}"
    try:
        terms = msgspec.json.decode(_unb64(parts[1]), type=OfferTerms)
    except (ValueError, msgspec.DecodeError):
        raise InvalidOffer("malformed offer token", field="offer_token") from None
    secret = keyring.secret(terms.kid)
    if secret is None:
        raise InvalidOffer("offer signed with an unknown key", field="offer_token")
    if not hmac.compare_digest(_sign(secret, signed_part), parts[2]):
        raise InvalidOffer("offer signature does not match", field="offer_token")
    if now.timestamp() >= terms.expires_at:
        raise InvalidOffer("offer has expired", field="offer_token")
    return terms


class Quote(msgspec.Struct, frozen=True):
    """One eligible plan for the product, with the signed token that sells it."""

    plan: Plan
    terms: OfferTerms
    token: str


class Declined(msgspec.Struct, frozen=True):
    plan: Plan
    reason: Ineligibility


def quote_plans(
    plans: list[Plan],
    product: OfferedProduct,
    *,
    locale: str,
    keyring: OfferKeyring,
    now: dt.datetime,
    ttl: dt.timedelta,
    lead_id: str | None = None,
) -> tuple[list[Quote], list[Declined]]:
    """Eligible plans with signed offers, and the others with the reason they are not."""
    facts = ProductFacts(
        product.category,
        check_amount(product.price, "product.price.amount"),
        product.purchase_date,
        check_country(product.country),
    )
    issued_at = int(now.timestamp())
    quotes: list[Quote] = []
    declined: list[Declined] = []
    for plan in plans:
        result = assess(plan, facts, country_days(now, facts.country))
        if result.reason is not None or result.price is None:
            declined.append(Declined(plan, result.reason or Ineligibility.PRICE_OUT_OF_BAND))
            continue
        terms = OfferTerms(
            offer_id=new_offer_id(),
            kid=keyring.signing[0],
            plan_code=plan.code,
            plan_version=plan.version,
            price=result.price,
            waiting_period_days=result.waiting_period_days,
            product=product,
            locale=locale,
            issued_at=issued_at,
            expires_at=issued_at + int(ttl.total_seconds()),
            lead_id=lead_id,
        )
        quotes.append(Quote(plan, terms, sign_offer(terms, keyring)))
    return quotes, declined
