"""What keeps the pages safe: their headers, CSRF tokens on every form, and sessions in
PostgreSQL (so every worker knows them) behind an HttpOnly cookie that holds no key.

CSRF is the signed double-submit pattern: every page visit gets a random `coverline_csrf` cookie
(HttpOnly, SameSite=Strict), and each form carries an HMAC of it. A form posted from another
site has neither the cookie (SameSite) nor the token (it cannot read our pages).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.exceptions import PermissionDeniedException
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.settings import Settings
from api.tables import PageSessionRow
from entitlements.errors import InvalidInput

CSRF_COOKIE = "coverline_csrf"
CSRF_FIELD = "csrf"
SESSION_COOKIES = {"console": "coverline_console", "portal": "coverline_portal"}

# Every answer outside /v1/ (the pages, the widget, /docs and their assets) carries these. Styles
# are restricted as scripts are: no inline <style> or style attribute anywhere, only our files.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; manifest-src 'self'"
)
_PAGE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", PAGE_CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
)
_SAME_ORIGIN = (*_PAGE_HEADERS, (b"referrer-policy", b"same-origin"))
# The portal's and the rating page's URLs carry a customer's link: no Referer leaves them, to anyone.
_NO_REFERRER = (*_PAGE_HEADERS, (b"referrer-policy", b"no-referrer"))


def page_headers(path: str) -> tuple[tuple[bytes, bytes], ...]:
    return _NO_REFERRER if path.startswith(("/portal", "/rate/")) else _SAME_ORIGIN


def _key(settings: Settings) -> bytes:
    return hashlib.sha256(b"coverline page csrf\0" + settings.replay_key.encode()).digest()


def _secure(request: Request[Any, Any, Any]) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def csrf_token(request: Request[Any, Any, Any]) -> str:
    """The token this browser's forms carry; sets the cookie it is made from on first visit
    (`with_csrf_cookie` sends it)."""
    raw = request.cookies.get(CSRF_COOKIE) or request.scope.setdefault("state", {}).get("new_csrf")
    if raw is None or len(raw) != 43:
        raw = secrets.token_urlsafe(32)
        request.scope["state"]["new_csrf"] = raw
    return _token_of(request, raw)


def _token_of(request: Request[Any, Any, Any], raw: str) -> str:
    """The token a form carries for the CSRF cookie `raw`."""
    return hmac.new(_key(request.app.state.settings), raw.encode(), hashlib.sha256).hexdigest()


def with_csrf_cookie(request: Request[Any, Any, Any], response: Response[Any]) -> Response[Any]:
    raw = request.scope.get("state", {}).get("new_csrf")
    if raw is not None:
        response.set_cookie(
            Cookie(
                key=CSRF_COOKIE,
                value=raw,
                path="/",
                httponly=True,
                secure=_secure(request),
                samesite="strict",
            )
        )
    return response


def check_csrf(request: Request[Any, Any, Any], form: dict[str, Any]) -> None:
    """Every form's first check: it was sent from our page (403), and no field holds a NUL, which
    no column can (a 422 page naming the field, where the database refused it with a 500)."""
    if held := next((name for name, value in form.items() if "\x00" in f"{name}{value}"), None):
        field = held.replace("\x00", "\\x00")
        raise InvalidInput(f"the field {field} holds a NUL character", field=field)
    raw = request.cookies.get(CSRF_COOKIE)
    given = form.get(CSRF_FIELD)
    # Compared as bytes: `compare_digest` raises on a str that is not ASCII, and a form may send one.
    if not (
        raw
        and isinstance(given, str)
        and hmac.compare_digest(_token_of(request, raw).encode(), given.encode())
    ):
        raise PermissionDeniedException("this form has expired or was not sent from our page: reload it")


# --- Sessions --------------------------------------------------------------------------------


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


async def open_session(
    session: AsyncSession,
    response: Response[Any],
    request: Request[Any, Any, Any],
    *,
    kind: str,
    seconds: int,
    now: dt.datetime,
    locale: str,
    key_id: str | None = None,
    agent: str | None = None,
    customer_id: str | None = None,
) -> None:
    raw = secrets.token_urlsafe(32)
    session.add(
        PageSessionRow(
            id=_hash(raw),
            kind=kind,
            key_id=key_id,
            agent=agent,
            customer_id=customer_id,
            locale=locale,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=seconds),
        )
    )
    # Sessions that ended are cleared as new ones begin: the table holds only live ones.
    await session.execute(delete(PageSessionRow).where(PageSessionRow.expires_at < now))
    response.set_cookie(
        Cookie(
            key=SESSION_COOKIES[kind],
            value=raw,
            path=f"/{kind}",
            httponly=True,
            secure=_secure(request),
            # A portal link is followed from a mail, a text message or Stripe's card page: a
            # navigation that begins on another site, which never carries a Strict cookie, so the
            # portal's is Lax (its forms are still kept by the CSRF token, and Lax sends no
            # cookie with another site's POST). An agent's console is opened from nowhere else.
            samesite="lax" if kind == "portal" else "strict",
            max_age=seconds,
        )
    )


async def current_session(
    session: AsyncSession, request: Request[Any, Any, Any], kind: str, now: dt.datetime
) -> PageSessionRow | None:
    raw = request.cookies.get(SESSION_COOKIES[kind])
    if not raw or len(raw) > 64:
        return None
    row = await session.scalar(
        select(PageSessionRow).where(
            PageSessionRow.id == _hash(raw),
            PageSessionRow.kind == kind,
            PageSessionRow.expires_at > now,
        )
    )
    return row


async def close_session(session: AsyncSession, request: Request[Any, Any, Any], kind: str) -> None:
    raw = request.cookies.get(SESSION_COOKIES[kind])
    if raw:
        await session.execute(delete(PageSessionRow).where(PageSessionRow.id == _hash(raw)))
