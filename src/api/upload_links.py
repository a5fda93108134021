"""The link a customer uploads a claim's evidence through, with no key: signed for one claim, and
good until it expires (`COVERLINE_UPLOAD_LINK_HOURS`)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

import msgspec

from api.settings import Settings
from entitlements.errors import NotFound


class UploadLink(msgspec.Struct, frozen=True):
    url: str
    expires_at: dt.datetime


def _link_key(settings: Settings) -> bytes:
    return hashlib.sha256(b"coverline evidence upload\0" + settings.replay_key.encode()).digest()


def _mac(settings: Settings, claim_id: str, expires: int) -> str:
    mac = hmac.new(_link_key(settings), f"{claim_id}.{expires}".encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def upload_link(settings: Settings, claim_id: str, now: dt.datetime) -> UploadLink:
    expires_at = (now + dt.timedelta(hours=settings.upload_link_hours)).replace(microsecond=0)
    expires = int(expires_at.timestamp())
    token = f"{claim_id}.{expires}.{_mac(settings, claim_id, expires)}"
    return UploadLink(f"{settings.public_url.rstrip('/')}/v1/evidence-uploads/{token}", expires_at)


def claim_of_link(settings: Settings, token: str, now: dt.datetime) -> str:
    """The claim a link was made for, or a 404 (not ours, or expired: the same answer to both)."""
    claim_id, _, rest = token.partition(".")
    expires, _, mac = rest.partition(".")
    if not (claim_id and expires.isdigit() and len(expires) <= 12 and token.isascii()):
        raise NotFound("no such upload link", field="token")
    if not hmac.compare_digest(mac, _mac(settings, claim_id, int(expires))) or int(expires) < now.timestamp():
        raise NotFound("no such upload link, or it has expired", field="token")
    return claim_id
