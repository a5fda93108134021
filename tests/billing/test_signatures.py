import hashlib
import hmac

import pytest
import stripe
from hypothesis import given
from hypothesis import strategies as st

from billing.webhooks.signatures import SignatureError, sign, verify

BODY = b'{"id": "evt_1", "type": "invoice.paid"}'
NOW = 1_795_000_000


def test_our_signature_is_stripes() -> None:
    header = sign(BODY, "whsec_a", NOW)
    assert verify(BODY, header, ["whsec_a"], NOW) == NOW
    # Stripe's own SDK accepts what we sign (the scheme is the same, not merely similar).
    stripe.WebhookSignature.verify_header(BODY.decode(), header, "whsec_a", tolerance=None)


def test_any_v1_against_any_secret_passes_during_a_rotation() -> None:
    old = sign(BODY, "whsec_old", NOW).split(",")[1]
    header = f"t={NOW},v1={'0' * 64},{old}"
    assert verify(BODY, header, ["whsec_new", "whsec_old"], NOW) == NOW


@pytest.mark.parametrize(
    ("body", "header", "now", "message"),
    [
        (BODY, None, NOW, "missing"),
        (BODY, "v1=abc", NOW, "needs t="),
        (BODY, f"t={NOW}", NOW, "needs t="),
        (BODY, f"t=yesterday,v1={'0' * 64}", NOW, "malformed"),
        (BODY, sign(BODY, "whsec_a", NOW - 301), NOW, "tolerance"),  # stale
        (BODY, sign(BODY, "whsec_a", NOW + 301), NOW, "tolerance"),  # from the future
        (BODY + b" ", sign(BODY, "whsec_a", NOW), NOW, "no signature matches"),  # tampered
        (BODY, sign(BODY, "whsec_forger", NOW), NOW, "no signature matches"),  # forged
    ],
)
def test_bad_signatures_are_refused(body: bytes, header: str | None, now: int, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify(body, header, ["whsec_a"], now)


@given(st.binary(min_size=1, max_size=200), st.integers(0, 199), st.integers(1, 255))
def test_any_changed_byte_breaks_the_signature(body: bytes, position: int, xor: int) -> None:
    header = sign(body, "whsec_a", NOW)
    index = position % len(body)
    changed = body[:index] + bytes([body[index] ^ xor]) + body[index + 1 :]
    with pytest.raises(SignatureError):
        verify(changed, header, ["whsec_a"], NOW)


def test_the_timestamp_is_part_of_what_is_signed() -> None:
    digest = hmac.new(b"whsec_a", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureError):
        verify(BODY, f"t={NOW + 1},v1={digest}", ["whsec_a"], NOW)
