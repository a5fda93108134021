"""The link a customer uploads a claim's evidence through, with no key: signed for one claim, and
good until it expires (`COVERLINE_UPLOAD_LINK_HOURS`)."""

from __future__ import annotations

import datetime as dt

import msgspec

from api.links import signed_token, subject_of
from api.settings import Settings
from entitlements.errors import NotFound

PURPOSE = "evidence upload"


class UploadLink(msgspec.Struct, frozen=True):
    url: str
    expires_at: dt.datetime


def upload_link(settings: Settings, claim_id: str, now: dt.datetime) -> UploadLink:
    expires_at = (now + dt.timedelta(hours=settings.upload_link_hours)).replace(microsecond=0)
    token = signed_token(settings, PURPOSE, claim_id, expires_at)
    return UploadLink(f"{settings.public_url.rstrip('/')}/v1/evidence-uploads/{token}", expires_at)


def claim_of_link(settings: Settings, token: str, now: dt.datetime) -> str:
    """The claim a link was made for, or a 404 (not ours, or expired: the same answer to both)."""
    claim_id = subject_of(settings, PURPOSE, token, now)
    if claim_id is None:
        raise NotFound("no such upload link, or it has expired", field="token")
    return claim_id
