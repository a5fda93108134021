"""What every request passes through before Litestar routes it.

It lives outside Litestar's middleware so it also wraps 404s and 405s: the request id and
access log, CORS for the checkout-page endpoints, body limits and media type, and rate limits.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import msgspec
import structlog
from litestar.utils import normalize_path

from api.auth import KeyCache, request_principal
from api.errors import (
    RETRY_AFTER,
    FieldError,
    database_gone,
    make_problem,
    send_problem,
    unavailable_problem,
    validation_problem,
)
from api.keys import KeyKind
from api.pages.security import page_headers
from api.rate_limits import RateLimits, Verdict
from api.rate_limits import headers as rate_headers
from api.settings import Settings

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
# Answers a request ahead of the app and says so, or returns False to leave it, unread, to the
# edge's checks and the app. It may only answer what the app would answer 200 to.
Shortcut = Callable[[dict[str, Any], Any], Awaitable[bool]]
# The same, for a request whose body the edge has read and checked (its size, media type and
# JSON): given the body, it answers, or returns False to leave the request to the app.
BodyShortcut = Callable[[dict[str, Any], bytes, Any], Awaitable[bool]]


# The one form a client may post: a mail client's one-click unsubscribe (RFC 8058).
FORM, FORM_PATHS = "application/x-www-form-urlencoded", ("/v1/unsubscribe/",)
# A claim's evidence comes as multipart/form-data, up to the evidence limit, on these paths alone.
MULTIPART, UPLOADS = (
    "multipart/form-data",
    re.compile(r"^/v1/(?:claims/[^/]+/evidence|evidence-uploads/[^/]+)$"),
)
MULTIPART_OVERHEAD = 64 * 1024  # the parts' headers and boundaries around the file
# A body larger than this (or of no declared length) is read only for a caller whose key is good:
# a stranger cannot make a worker hold megabytes. The routes that take no key are bounded by size
# and by the server's read timeouts alone: Stripe's events, a customer's signed upload link, the
# one-click unsubscribe.
AUTH_FIRST_BYTES = 8 * 1024
# A page's form (the console's, the portal's, the rating page's: no key, no file) holds a few
# fields, a claim's description of 2,000 characters at most: 9 bytes each, percent-encoded.
PAGE_FORM_MAX_BYTES = 64 * 1024
STRIPE_EVENTS = "/v1/stripe/webhooks"
KEYLESS_POSTS = re.compile(r"^/v1/(?:stripe/webhooks|evidence-uploads/[^/]+|unsubscribe/[^/]+)$")


class Route(msgspec.Struct, frozen=True):
    """A path template and, per method, the query parameters it declares."""

    path: str
    methods: dict[str, frozenset[str] | None]  # None: not in the OpenAPI document, not checked
    integers: frozenset[str] = frozenset()  # its query parameters whose values are whole numbers


# No text we store may hold a NUL character (PostgreSQL's text cannot), so none is accepted: in a
# query, in a path, or escaped in a JSON string (`\u0000`, unless its backslash is itself escaped,
# as in `\\u0000`, six characters someone typed).
_NUL = re.compile(rb"%00")
_INTEGER = re.compile(r"-?[0-9]+")
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
NUL_DETAIL = "text may not contain NUL (\\u0000) characters"
# No body we read nests deeper than this (the deepest, a Stripe event, about 8); a much deeper one
# would exhaust the JSON decoder's recursion before any schema is checked.
MAX_JSON_DEPTH = 32
# An unclosed string is taken to the end: a pattern that needed the closing quote would be tried
# again from every later quote, and a body of quotes and backslashes would cost minutes.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"?', re.S)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def _vary_on_language(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    for index, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            if b"accept-language" not in value.lower():
                headers[index] = (name, value + b", Accept-Language")
            return headers
    return [*headers, (b"vary", b"Accept-Language")]


# A `\uD800`–`\uDBFF` escape (an escape: after an even number of backslashes) that no low
# surrogate's escape follows: no character, where msgspec says only "Input data was truncated".
_LONE_SURROGATE = re.compile(rb"(?:^|[^\\])(?:\\\\)*\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])")


def _unreadable(body: bytes, *, event: bool = False) -> str | None:
    """Why a JSON body cannot be read safely, or None. (A Stripe event's body that reads but
    is no event is kept as malformed and acknowledged by its handler: Stripe would send a 400'd
    one again for days.)"""
    if _JSON_NUL.search(body):
        return NUL_DETAIL
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not valid UTF-8"
    if not event and not body.strip():
        return "the body is blank: send a JSON document, or no body at all"
    if not event and (b"\\ud" in body or b"\\uD" in body) and (lone := _LONE_SURROGATE.search(body)):
        return (
            f"the body holds half of a UTF-16 surrogate pair (\\u{lone[0][-4:].decode()}) with no other half"
        )
    if nested_deeper_than(body, MAX_JSON_DEPTH):
        return f"the body nests arrays and objects more than {MAX_JSON_DEPTH} deep"
    return None


def nested_deeper_than(body: bytes, limit: int) -> bool:
    """Whether JSON `body` opens more than `limit` arrays and objects inside each other. (Counted
    outside strings, and only when there are that many brackets at all.)"""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub(b"", body)):
        depth += 1 if bracket in b"[{" else -1
        if depth > limit:
            return True
    return False


_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_STORE = (b"cache-control", b"no-store")
PUBLIC_PATHS = ("/v1/plans",)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Paths a browser on a checkout page may call with a publishable key.
CORS_PATHS = ("/v1/plans", "/v1/offers")
CORS_ALLOW_HEADERS = b"authorization, content-type, idempotency-key, accept-language, x-request-id"


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _withheader(send: Any, extra: list[tuple[bytes, bytes]]) -> Any:
    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped


def _bodiless(send: Any) -> Any:
    """A GET's answer as HEAD's (RFC 9110 §9.3.2): its status and headers, no body."""

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return wrapped


# Headers that hold one value (RFC 9110 lists may repeat: Accept-Language does).
_SINGLE = frozenset({b"authorization", b"idempotency-key", b"content-type", b"stripe-signature"})


def _told_twice(headers: list[tuple[bytes, bytes]]) -> list[str]:
    """The headers of one value given more than once with different values (ASGI's header names
    are lower case). Looked for only when some name repeats: most requests repeat none."""
    told: dict[bytes, set[bytes]] = {}
    for name, value in headers:
        if name in _SINGLE:
            told.setdefault(name, set()).add(value.strip())
    return sorted(name.decode() for name, values in told.items() if len(values) > 1)


# Pages whose GET does something (the portal's link opens a session, a rating link a request,
# the sandbox's and the demo's pages act on a payment): HEAD is not answered as their GET.
_ACTING_PAGES = re.compile(r"^/(?:portal|rate|sandbox|demo)(?:/|$)")


def _head_as_get(path: str, methods: dict[str, Any]) -> bool:
    return "GET" in methods and "HEAD" not in methods and not _ACTING_PAGES.match(path)


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        routes: list[Route],
        shortcuts: dict[tuple[str, str], Shortcut] | None = None,
        body_shortcuts: dict[tuple[str, str], BodyShortcut] | None = None,
        keys: KeyCache | None = None,
        limits: RateLimits | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.keys = keys
        self.limits = limits
        self.shortcuts = shortcuts or {}
        self.body_shortcuts = body_shortcuts or {}
        # Static paths by name; templated ones in order, as the router matches them.
        self._static = {route.path: route for route in routes if "{" not in route.path}
        self._templated = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", route.path) + "$"), route)
            for route in sorted(routes, key=lambda r: (r.path.count("{"), r.path))
            if "{" in route.path
        ]

        self.log: Any = structlog.get_logger("api.access")  # after the app factory configured logging

    def _route(self, path: str) -> Route | None:
        """The route the app's router will serve `path` by: a trailing or doubled slash is the
        same route to it, so its checks (the query's parameters) are the same too."""
        found = self._match(path)
        if found is None and (path.endswith("/") or "//" in path):
            found = self._match(normalize_path(path))
        return found

    def _match(self, path: str) -> Route | None:
        static = self._static.get(path)
        if static is not None:
            return static
        return next((route for pattern, route in self._templated if pattern.match(path)), None)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else "req_" + secrets.token_hex(12)
        scope.setdefault("state", {})["request_id"] = request_id
        status: int | None = None  # none sent: the client went away, or the server answered it
        started = False
        # Answers about customers, contracts and money are kept by no cache on the way; the
        # published catalog may be.
        private = scope["path"].startswith("/v1/") and not scope["path"].startswith(PUBLIC_PATHS)

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode()), _NOSNIFF]
                if private and not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append(_NO_STORE)
                if scope["path"].startswith("/v1/"):  # answers in the caller's language
                    headers = _vary_on_language(headers)
                else:  # a page, its assets, the widget, /docs
                    present = {name.lower() for name, _ in headers}
                    headers += [h for h in page_headers(scope["path"]) if h[0] not in present]
                message = {**message, "headers": headers}
            await send(message)

        begin = time.perf_counter()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self._cors(scope, receive, tracked)
        except Exception as exc:
            if not database_gone(exc):
                self.log.exception("request failed outside the app")
                if not started:
                    await send_problem(
                        tracked,
                        make_problem(500, "the server could not complete the request", request_id=request_id),
                    )
            elif not started:
                self.log.warning("database unreachable", error=repr(exc), path=scope["path"])
                await send_problem(
                    tracked,
                    unavailable_problem(scope["path"], request_id),
                    [(b"retry-after", RETRY_AFTER.encode())],
                )
        finally:
            self.log.info(
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
        origin = header(scope, b"origin")
        if origin is None or not scope["path"].startswith(CORS_PATHS):
            await self._post(scope, receive, send)
            return
        allowed = self._origin_allowed(origin)
        if allowed is None:
            await self._post(scope, receive, send)
            return
        cors = [(b"access-control-allow-origin", allowed), (b"vary", b"Origin")]
        if scope["method"] == "OPTIONS" and header(scope, b"access-control-request-method"):
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
        await self._post(scope, receive, _withheader(send, [*cors, expose]))

    # --- Rate limit, body limits, media type and idempotency -------------------------------

    async def _rate_verdict(self, scope: dict[str, Any]) -> Verdict | None:
        """The caller's rate limit, by its key's id (a publishable key: by key and client
        address), however the header spells the key; None: not limited (no valid key, or the
        key's kind has no limit)."""
        limited = (
            self.settings.rate_limit_per_minute > 0 or self.settings.publishable_rate_limit_per_minute > 0
        )
        if self.limits is None or self.keys is None or not limited:
            return None
        principal = await request_principal(self.keys, scope["state"], header(scope, b"authorization"))
        if principal is None:
            return None  # refused by the app: an unknown key costs a cached lookup, no bucket
        if principal.kind is KeyKind.PUBLISHABLE:
            per_minute = self.settings.publishable_rate_limit_per_minute
            client = (scope.get("client") or ("-",))[0]
            bucket = f"pk:{principal.key_id}:{client}"
        else:
            per_minute, bucket = self.settings.rate_limit_per_minute, f"sk:{principal.key_id}"
        return await self.limits.take(bucket, per_minute) if per_minute > 0 else None

    async def _page_form(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """A page's form, read here up to what a form holds (the app reads bodies unbounded), and
        handed to the app as it came."""
        body = await _bounded(scope, receive, send, PAGE_FORM_MAX_BYTES)
        if body is None:
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                message: dict[str, Any] = await receive()  # the disconnect, when it comes
                return message
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _post(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request_id = scope["state"]["request_id"]
        path = scope["path"]
        if len(dict(scope["headers"])) != len(scope["headers"]) and (twice := _told_twice(scope["headers"])):
            # Which one was meant would be a guess (the first won: a key checked, another replayed);
            # the same value twice, as a proxy may repeat it, says one thing.
            detail = f"header(s) given more than once, with different values: {', '.join(twice)}"
            problem = make_problem(400, detail, slug="repeated-header", instance=path, request_id=request_id)
            await send_problem(send, problem)
            return
        route = self._route(path)
        methods = route.methods if route is not None else {}
        if scope["method"] == "HEAD" and _head_as_get(path, methods):
            # What a GET would answer, without its body: a load balancer's health check, a client
            # asking a size. (The router has no HEAD of its own: it answered 405.)
            await self._post({**scope, "method": "GET"}, receive, _bodiless(send))
            return
        verdict = await self._rate_verdict(scope)
        if verdict is not None and not verdict.allowed:
            detail = f"over this API key's limit of {verdict.limit} requests a minute"
            await send_problem(
                send, make_problem(429, detail, instance=path, request_id=request_id), rate_headers(verdict)
            )
            return
        if route is not None and scope["method"] == "OPTIONS":
            head = ["HEAD"] if _head_as_get(path, route.methods) else []  # as `_post` answers it
            allow = ", ".join(sorted({*route.methods, *head})).encode()
            await send({"type": "http.response.start", "status": 204, "headers": [(b"allow", allow)]})
            await send({"type": "http.response.body", "body": b""})
            return
        shortcut = self.shortcuts.get((scope["method"], path))
        if shortcut is not None and await shortcut(scope, send):
            return  # answered: a shortcut only answers what the app would answer 200 to
        if _NUL.search(scope.get("query_string", b"")) or "\x00" in path:
            await send_problem(
                send,
                make_problem(400, NUL_DETAIL, slug="malformed-query", instance=path, request_id=request_id),
            )
            return
        known = route.methods.get(scope["method"]) if route is not None else None
        if route is not None and known is not None and scope.get("query_string"):
            pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            given = [key for key, _ in pairs]
            names = set(given)
            if twice := sorted(name for name, count in Counter(given).items() if count > 1):
                # No parameter of ours is a list: which one was meant would be a guess.
                detail = f"query parameter(s) given more than once: {', '.join(twice)}"
                problem = make_problem(
                    400, detail, slug="repeated-query-parameter", instance=path, request_id=request_id
                )
                await send_problem(send, problem)
                return
            if unknown := sorted(names - known):  # a typo (`?serail=`) must not silently widen a query
                detail = f"unknown query parameter(s): {', '.join(unknown)}"
                problem = make_problem(
                    400, detail, slug="unknown-query-parameter", instance=path, request_id=request_id
                )
                await send_problem(send, problem)
                return
            if errors := [
                FieldError(f"query.{key}", "Expected a whole number in ASCII digits")
                for key, value in pairs
                if key in route.integers and not _INTEGER.fullmatch(value)
            ]:  # the app would also take `1e2` and `100.0` for 100
                await send_problem(send, validation_problem(errors, instance=path, request_id=request_id))
                return
        with_body = scope["method"] in ("POST", "PUT", "PATCH")
        if with_body and route is not None and known is None and scope["method"] in route.methods:
            await self._page_form(scope, receive, send)  # a page's form: no API operation
            return
        if not with_body or (route is not None and known is None):
            await self.app(scope, receive, send)  # the app's own 405 for a method the path lacks
            return
        declared = header(scope, b"content-length")
        upload = scope["method"] == "POST" and UPLOADS.match(path) is not None
        limit = (
            self.settings.evidence_max_bytes + MULTIPART_OVERHEAD if upload else self.settings.max_body_bytes
        )
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_problem(
                send,
                make_problem(413, f"the body is over {limit} bytes", instance=path, request_id=request_id),
            )
            return
        large = declared is None or not declared.isdigit() or int(declared) > AUTH_FIRST_BYTES
        if large and self.keys is not None and not KEYLESS_POSTS.match(path):
            found = await request_principal(self.keys, scope["state"], header(scope, b"authorization"))
            if found is None:
                detail = "a valid API key is required before a body of this size is read"
                await send_problem(send, make_problem(401, detail, instance=path, request_id=request_id))
                return
        body = await _bounded(scope, receive, send, limit)
        if body is None:
            return
        media_type, _, parameters = (header(scope, b"content-type") or "").partition(";")
        content_type = media_type.strip().lower()
        is_json = content_type == "application/json" or content_type.endswith("+json")
        if body and (refused := _unread_coding(header(scope, b"content-encoding"), parameters)):
            await send_problem(send, make_problem(415, refused, instance=path, request_id=request_id))
            return
        if body and not is_json and content_type == FORM and path.startswith(FORM_PATHS):
            body = b""  # RFC 8058's one-click form: its one field says nothing the path does not
        if upload:
            if content_type != MULTIPART:
                problem = make_problem(
                    415, "send the file as multipart/form-data", instance=path, request_id=request_id
                )
                await send_problem(send, problem)
                return
        elif body and not is_json:
            await send_problem(
                send,
                make_problem(415, "send the body as application/json", instance=path, request_id=request_id),
            )
            return
        if body and not upload and (unreadable := _unreadable(body, event=path == STRIPE_EVENTS)) is not None:
            problem = make_problem(
                400, unreadable, slug="malformed-body", instance=path, request_id=request_id
            )
            await send_problem(send, problem)
            return
        body_shortcut = self.body_shortcuts.get((scope["method"], path))
        if body_shortcut is not None and await body_shortcut(scope, body, send):
            return

        replayed = False

        async def replay_receive() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                message: dict[str, Any] = await receive()
                return message
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay_receive, send)


async def _bounded(scope: dict[str, Any], receive: Any, send: Any, limit: int) -> bytes | None:
    """The request's body, or None once it is answered: a 413 as soon as it is declared or sent
    past `limit`, before the rest is read (or nothing, when the client went away)."""
    path, request_id = scope["path"], scope["state"]["request_id"]
    too_large = make_problem(413, f"the body is over {limit} bytes", instance=path, request_id=request_id)
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        await send_problem(send, too_large)
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            await send_problem(send, too_large)
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


_UTF8 = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})  # ASCII is UTF-8's first half


def _unread_coding(encoding: str | None, parameters: str) -> str | None:
    """Why a body cannot be read as it says it is written, or None: a content coding (gzip,
    br) Coverline does not undo, or a charset other than UTF-8 (RFC 8259 JSON is UTF-8; a form is
    read as UTF-8). Either was read as plain UTF-8 all the same, and a body meant otherwise taken
    for what it was not."""
    if encoding is not None and encoding.strip().lower() not in ("", "identity"):
        return f"Content-Encoding {encoding.strip()[:40]!r} is not accepted: send the body as it is"
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in _UTF8:
            return f"charset {value.strip()[:40]!r} is not accepted: send the body in UTF-8"
    return None
