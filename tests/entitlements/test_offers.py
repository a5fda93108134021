import base64
import datetime as dt
import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from entitlements.catalog import ProductCategory
from entitlements.errors import InvalidOffer
from entitlements.money import Money
from entitlements.offers.rules import OfferedProduct, OfferKeyring, OfferTerms, sign_offer, verify_offer

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
KEYS = OfferKeyring((("k2", b"s" * 40), ("k1", b"r" * 40)))


def terms(**overrides: object) -> OfferTerms:
    values: dict[str, object] = {
        "offer_id": "ofr_1",
        "kid": "k2",
        "plan_code": "phone-protect-24",
        "plan_version": 1,
        "price": Money(349900, "PHP"),
        "waiting_period_days": 0,
        "product": OfferedProduct(
            ProductCategory.PHONE, "SKU-1", Money(2499000, "PHP"), NOW.date(), "PH", "SN1"
        ),
        "locale": "fil",
        "issued_at": int(NOW.timestamp()),
        "expires_at": int(NOW.timestamp()) + 3600,
    }
    values.update(overrides)
    return OfferTerms(**values)  # type: ignore[arg-type]


def _payload(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def _with_payload(token: str, payload: dict[str, object]) -> str:
    version, _, signature = token.split(".")
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{version}.{body}.{signature}"


def test_a_signed_offer_verifies_to_the_same_terms() -> None:
    token = sign_offer(terms(), KEYS)
    assert verify_offer(token, KEYS, NOW) == terms()


# Every field the token binds, with a different value.
CHANGES: list[tuple[str, object]] = [
    ("offer_id", "ofr_2"),
    ("plan_code", "laptop-care-36"),
    ("plan_version", 2),
    ("price", {"amount": 1, "currency": "PHP"}),
    ("price", {"amount": 349900, "currency": "USD"}),
    ("waiting_period_days", 30),
    ("locale", "en"),
    ("issued_at", 1),
    ("expires_at", 2_000_000_000),
    ("product.category", "tv"),
    ("product.sku", "SKU-2"),
    ("product.price", {"amount": 100, "currency": "PHP"}),
    ("product.purchase_date", "2020-01-01"),
    ("product.country", "SE"),
    ("product.serial", "SN2"),
]


@pytest.mark.parametrize(("field", "value"), CHANGES)
def test_changing_any_bound_field_breaks_the_signature(field: str, value: object) -> None:
    token = sign_offer(terms(), KEYS)
    payload = _payload(token)
    target = payload
    *parents, leaf = field.split(".")
    for parent in parents:
        target = target[parent]  # type: ignore[assignment]
    target[leaf] = value
    with pytest.raises(InvalidOffer, match="signature"):
        verify_offer(_with_payload(token, payload), KEYS, NOW)


@given(st.integers(0, 10_000), st.integers(0, 255), st.characters())
def test_changing_any_character_is_rejected(position: int, xor: int, other: str) -> None:
    """A byte flipped, or any character at all (a shopper edits the token the widget hands on)."""
    token = sign_offer(terms(), KEYS)
    index = position % len(token)
    for changed in (chr(ord(token[index]) ^ (xor or 1)), other):
        tampered = token[:index] + changed + token[index + 1 :]
        if tampered != token:
            with pytest.raises(InvalidOffer):
                verify_offer(tampered, KEYS, NOW)


def test_a_signature_in_other_characters_is_rejected() -> None:
    token = sign_offer(terms(), KEYS)
    with pytest.raises(InvalidOffer, match="malformed"):
        verify_offer(token.rpartition(".")[0] + ".é", KEYS, NOW)


def test_an_unknown_key_id_is_rejected() -> None:
    token = sign_offer(terms(), KEYS)
    with pytest.raises(InvalidOffer, match="unknown key"):
        verify_offer(token, OfferKeyring((("k9", b"s" * 40),)), NOW)
    payload = _payload(token)
    payload["kid"] = "k3"
    with pytest.raises(InvalidOffer, match="unknown key"):
        verify_offer(_with_payload(token, payload), KEYS, NOW)


def test_an_offer_expires() -> None:
    token = sign_offer(terms(), KEYS)
    verify_offer(token, KEYS, NOW + dt.timedelta(seconds=3599))
    with pytest.raises(InvalidOffer, match="expired"):
        verify_offer(token, KEYS, NOW + dt.timedelta(seconds=3600))


def test_keys_rotate_old_offers_still_verify_until_their_key_is_dropped() -> None:
    old_ring = OfferKeyring((("k1", b"r" * 40),))
    token = sign_offer(terms(kid="k1"), old_ring)
    assert verify_offer(token, KEYS, NOW).kid == "k1"  # k2 signs now, k1 still verifies
    with pytest.raises(InvalidOffer):
        verify_offer(token, OfferKeyring((("k2", b"s" * 40),)), NOW)


@pytest.mark.parametrize(
    "token", ["", "v1", "v1.a.b.c", "v2.e30.sig", "v1.!!!.sig", "v1.e30.sig", "v1.é.sig"]
)
def test_malformed_tokens_are_rejected(token: str) -> None:
    with pytest.raises(InvalidOffer):
        verify_offer(token, KEYS, NOW)


def test_keyring_spec_needs_long_secrets() -> None:
    ring = OfferKeyring.parse("new:" + "n" * 32 + ", old:" + "o" * 32)
    assert ring.signing[0] == "new" and ring.secret("old") == b"o" * 32
    with pytest.raises(ValueError, match="32"):
        OfferKeyring.parse("short:abc")


@pytest.mark.parametrize(
    ("country", "sold"),
    [("PH", True), ("VN", True), ("US", False), ("SE", False)],  # at 01:00 in Manila, 18:00 UTC
)
def test_a_purchase_dated_today_where_the_product_was_bought_is_not_in_the_future(
    country: str, sold: bool
) -> None:
    from entitlements.catalog import Ineligibility, decode_catalog
    from entitlements.offers.rules import quote_plans
    from tests.conftest import DEMO_CATALOG

    plans, _ = decode_catalog(DEMO_CATALOG.read_bytes())
    phone_plan = [p for p in plans if p.code == "phone-protect-24"]
    evening = dt.datetime(2026, 11, 27, 17, 30, tzinfo=dt.UTC)  # 01:30 on the 28th in Manila
    product = OfferedProduct(
        ProductCategory.PHONE, "SKU-1", Money(2_499_000, "PHP"), dt.date(2026, 11, 28), country, "SN1"
    )
    product = (
        msgspec.structs.replace(product, price=Money(80_000, "USD")) if country in ("US", "SE") else product
    )
    quotes, declined = quote_plans(
        phone_plan, product, locale="en", keyring=KEYS, now=evening, ttl=dt.timedelta(hours=1)
    )
    if sold:
        assert [q.plan.code for q in quotes] == ["phone-protect-24"], declined
    else:
        assert [d.reason for d in declined] == [Ineligibility.PURCHASE_IN_FUTURE]
