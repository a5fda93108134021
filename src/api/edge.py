"""What every request passes through before Litestar routes it.

It lives outside Litestar's middleware so it also wraps 404s and 405s: the request id and
access log, CORS for the checkout-page endpoints, body limits and media type, rate limits and
idempotent replay of POSTs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.auth import Principal, authenticate
from api.errors import make_problem, send_problem
from api.settings import Settings
from api.tables import IdempotentRequestRow
from entitlements.store.base import utcnow

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
log = structlog.get_logger("api.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
IDEMPOTENCY_TTL = dt.timedelta(hours=24)
MAX_IDEMPOTENCY_KEY = 255
# Paths a browser on a checkout page may call with a publishable key.
CORS_PATHS = ("/v1/plans", "/v1/offers")
CORS_ALLOW_HEADERS = b"authorization, content-type, idempotency-key, accept-language, x-request-id"


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _with_header(send: Any, extra: list[tuple[bytes, bytes]]) -> Any:
    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        sessions: Callable[[], async_sessionmaker[AsyncSession]],
    ) -> None:
        self.app = app
        self.settings = settings
        self._sessions = sessions
        self._window: tuple[int, dict[str, int]] = (0, {})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else "req_" + secrets.token_hex(12)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = False

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())],
                }
            await send(message)

        begin = time.perf_counter()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self._cors(scope, receive, tracked)
        except Exception:
            log.exception("request failed outside the app")
            if not started:
                await send_problem(
                    tracked,
                    make_problem(500, "the server could not complete the request", request_id=request_id),
                )
        finally:
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],  # never the query: it can carry serials and contacts
                status=status,
                ms=round((time.perf_counter() - begin) * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")

    # --- CORS, for the checkout-page endpoints only -----------------------------------------

    def _origin_allowed(self, origin: str) -> bytes | None:
        if "*" in self.settings.cors_origins:
            return b"*"
        return origin.encode() if origin in self.settings.cors_origins else None

    async def _cors(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        origin = _header(scope, b"origin")
        if origin is None or not scope["path"].startswith(CORS_PATHS):
            await self._post(scope, receive, send)
            return
        allowed = self._origin_allowed(origin)
        if allowed is None:
            await self._post(scope, receive, send)
            return
        cors = [(b"access-control-allow-origin", allowed), (b"vary", b"Origin")]
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        *cors,
                        (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                        (b"access-control-allow-headers", CORS_ALLOW_HEADERS),
                        (b"access-control-max-age", b"600"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        expose = (b"access-control-expose-headers", b"x-request-id, idempotent-replayed")
        await self._post(scope, receive, _with_header(send, [*cors, expose]))

    # --- Rate limit, body limits, media type and idempotency -------------------------------

    def _over_rate_limit(self, scope: dict[str, Any]) -> bool:
        limit = self.settings.rate_limit_per_minute
        token = _header(scope, b"authorization")
        if limit <= 0 or not token:
            return False
        minute = int(time.time() // 60)
        window, counts = self._window
        if window != minute:
            counts = {}
            self._window = (minute, counts)
        caller = hashlib.sha256(token.encode()).hexdigest()
        counts[caller] = counts.get(caller, 0) + 1
        return counts[caller] > limit

    async def _post(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request_id = scope["state"]["request_id"]
        path = scope["path"]
        if self._over_rate_limit(scope):
            retry = str(60 - int(time.time()) % 60).encode()
            await send_problem(
                send,
                make_problem(429, "too many requests for this API key", instance=path, request_id=request_id),
                [(b"retry-after", retry)],
            )
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        limit = self.settings.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_problem(
                send,
                make_problem(413, f"the body is over {limit} bytes", instance=path, request_id=request_id),
            )
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await send_problem(
                    send,
                    make_problem(
                        413, f"the body is over {limit} bytes", instance=path, request_id=request_id
                    ),
                )
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        is_json = content_type == "application/json" or content_type.endswith("+json")
        if body and not is_json:
            await send_problem(
                send,
                make_problem(415, "send the body as application/json", instance=path, request_id=request_id),
            )
            return
        if body:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                await send_problem(
                    send,
                    make_problem(
                        400,
                        "the body is not valid UTF-8",
                        slug="malformed-body",
                        instance=path,
                        request_id=request_id,
                    ),
                )
                return

        replayed = False

        async def replay_receive() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                message: dict[str, Any] = await receive()
                return message
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        key = _header(scope, b"idempotency-key")
        if key is None:
            await self.app(scope, replay_receive, send)
            return
        if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
            await send_problem(
                send,
                make_problem(
                    400,
                    f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters",
                    slug="invalid-idempotency-key",
                    instance=path,
                    request_id=request_id,
                ),
            )
            return
        await self._idempotent(scope, replay_receive, send, key, body)

    async def _idempotent(
        self, scope: dict[str, Any], receive: Any, send: Any, key: str, body: bytes
    ) -> None:
        token = _header(scope, b"authorization") or ""
        sessions = self._sessions()
        principal: Principal | None = None
        scheme, _, raw = token.partition(" ")
        if scheme.lower() == "bearer" and raw.strip():
            async with sessions() as session:
                principal = await authenticate(session, raw.strip())
        scope["state"]["principal"] = principal
        if principal is None:  # the guard answers 401; nothing to remember
            await self.app(scope, receive, send)
            return
        request_id = scope["state"]["request_id"]
        path = scope["path"]
        query = scope.get("query_string", b"")
        fingerprint = hashlib.sha256(
            b"\n".join([scope["method"].encode(), path.encode(), query, body])
        ).hexdigest()
        now = utcnow()
        async with sessions() as session, session.begin():
            await session.execute(
                delete(IdempotentRequestRow).where(
                    IdempotentRequestRow.principal == principal.key_id,
                    IdempotentRequestRow.key == key,
                    IdempotentRequestRow.created_at < now - IDEMPOTENCY_TTL,
                )
            )
            stored = await session.scalar(
                select(IdempotentRequestRow).where(
                    IdempotentRequestRow.principal == principal.key_id, IdempotentRequestRow.key == key
                )
            )
        if stored is not None:
            if stored.fingerprint != fingerprint:
                await send_problem(
                    send,
                    make_problem(
                        422,
                        "this Idempotency-Key was used with a different request",
                        slug="idempotency-key-reused",
                        instance=path,
                        request_id=request_id,
                    ),
                )
            elif stored.status_code is None:
                await send_problem(
                    send,
                    make_problem(
                        409,
                        "a request with this Idempotency-Key is still in progress",
                        slug="idempotency-in-progress",
                        instance=path,
                        request_id=request_id,
                    ),
                )
            else:
                stored_body = stored.body or b""
                await send(
                    {
                        "type": "http.response.start",
                        "status": stored.status_code,
                        "headers": [
                            (b"content-type", (stored.content_type or "application/json").encode()),
                            (b"content-length", str(len(stored_body)).encode()),
                            (b"idempotent-replayed", b"true"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": stored_body})
            return
        try:
            async with sessions() as session, session.begin():
                session.add(
                    IdempotentRequestRow(
                        principal=principal.key_id, key=key, fingerprint=fingerprint, created_at=now
                    )
                )
        except IntegrityError:
            await send_problem(
                send,
                make_problem(
                    409,
                    "a request with this Idempotency-Key is still in progress",
                    slug="idempotency-in-progress",
                    instance=path,
                    request_id=request_id,
                ),
            )
            return

        captured_status = 500
        captured_type: str | None = None
        captured: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            nonlocal captured_status, captured_type
            if message["type"] == "http.response.start":
                captured_status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        captured_type = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                captured.append(message.get("body", b""))
            await send(message)

        completed = False
        try:
            await self.app(scope, receive, capture)
            completed = captured_status < 500
        finally:
            async with sessions() as session, session.begin():
                row = await session.get(IdempotentRequestRow, (principal.key_id, key))
                if row is not None:
                    if completed:
                        row.status_code = captured_status
                        row.content_type = captured_type
                        row.body = b"".join(captured)
                    else:  # a server error is not an answer: let the caller retry
                        await session.delete(row)
