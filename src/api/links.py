"""Links that carry their own authority: a subject (a claim, a customer) and an expiry, signed
with a key derived from the deployment's secret for one purpose, so a link made for one use is
never good for another."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

import msgspec

from api.settings import Settings

PORTAL = "customer portal"
SATISFACTION = "satisfaction request"


def _mac(settings: Settings, purpose: str, subject: str, expires: int) -> str:
    key = hashlib.sha256(f"coverline {purpose}\0".encode() + settings.replay_key.encode()).digest()
    mac = hmac.new(key, f"{subject}.{expires}".encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def signed_token(settings: Settings, purpose: str, subject: str, expires_at: dt.datetime) -> str:
    expires = int(expires_at.timestamp())
    return f"{subject}.{expires}.{_mac(settings, purpose, subject, expires)}"


def subject_of(settings: Settings, purpose: str, token: str, now: dt.datetime) -> str | None:
    """The subject a token was signed for, or None: not signed by us for this purpose, or expired
    (the caller gives one answer to both)."""
    subject, _, rest = token.partition(".")
    expires, _, mac = rest.partition(".")
    if not (subject and expires.isdigit() and len(expires) <= 12 and token.isascii()):
        return None
    if not hmac.compare_digest(mac, _mac(settings, purpose, subject, int(expires))):
        return None
    return subject if int(expires) >= now.timestamp() else None


class PortalLink(msgspec.Struct, frozen=True):
    url: str
    expires_at: dt.datetime


def portal_link(settings: Settings, customer_id: str, now: dt.datetime) -> PortalLink:
    """The customer's way into /portal, good for `portal_link_days` (7): in their letters, and
    from `POST /v1/customers/{id}/portal-links`."""
    expires_at = (now + dt.timedelta(days=settings.portal_link_days)).replace(microsecond=0)
    token = signed_token(settings, PORTAL, customer_id, expires_at)
    return PortalLink(f"{settings.public_url.rstrip('/')}/portal/{token}", expires_at)


def rating_link(settings: Settings, request_id: str, expires_at: dt.datetime) -> str:
    """The link a satisfaction letter carries to the rating page, good until the request expires."""
    token = signed_token(settings, SATISFACTION, request_id, expires_at)
    return f"{settings.public_url.rstrip('/')}/rate/{token}"
