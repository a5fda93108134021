"""RFC 9457 problem details: the one place where errors become HTTP."""

from __future__ import annotations

import os
import traceback
from http import HTTPStatus
from typing import Any

import asyncpg
import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap
from sqlalchemy.exc import DBAPIError

from api.views import INSTANT_PATTERN
from billing.gateway import GatewayError, HostedPagesUnavailable
from billing.webhooks.signatures import SignatureError
from entitlements.benefits.rules import NotRedeemable
from entitlements.contracts.store import lost_to_another_contract
from entitlements.errors import Conflict, DomainError, Forbidden, InvalidInput, InvalidOffer, NotFound
from entitlements.money import CurrencyMismatch, UnknownCurrency

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("api.errors")


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] = []


def problem_type(slug: str) -> str:
    return f"urn:coverline:problem:{slug}"


# Domain error → (status, slug). Order matters: the first matching class wins.
DOMAIN_PROBLEMS: tuple[tuple[type[Exception], HTTPStatus, str], ...] = (
    (InvalidOffer, HTTPStatus.UNPROCESSABLE_ENTITY, "invalid-offer"),
    (InvalidInput, HTTPStatus.UNPROCESSABLE_ENTITY, "invalid-input"),
    (UnknownCurrency, HTTPStatus.UNPROCESSABLE_ENTITY, "unknown-currency"),
    (CurrencyMismatch, HTTPStatus.UNPROCESSABLE_ENTITY, "currency-mismatch"),
    (NotFound, HTTPStatus.NOT_FOUND, "not-found"),
    (NotRedeemable, HTTPStatus.CONFLICT, "not-redeemable"),
    (Conflict, HTTPStatus.CONFLICT, "conflict"),
    (Forbidden, HTTPStatus.FORBIDDEN, "forbidden"),
    (SignatureError, HTTPStatus.BAD_REQUEST, "invalid-signature"),
)

HTTP_SLUGS: dict[int, str] = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    402: "payment-declined",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
    429: "rate-limited",
    500: "internal-error",
    502: "payment-gateway-error",
    503: "unavailable",
}


def make_problem(
    status: int,
    detail: str | None = None,
    *,
    slug: str | None = None,
    instance: str | None = None,
    request_id: str | None = None,
    errors: list[FieldError] | None = None,
) -> Problem:
    return Problem(
        type=problem_type(slug or HTTP_SLUGS.get(status, "error")),
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=instance,
        request_id=request_id,
        errors=errors or [],
    )


def _request_id(request: Request[Any, Any, Any]) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def _response(problem: Problem, headers: dict[str, str] | None = None) -> Response[Problem]:
    return Response(problem, status_code=problem.status, media_type=PROBLEM_JSON, headers=headers)


def _parameter_name(request: Request[Any, Any, Any], key: str) -> str:
    """A parameter's name in the request (`to`), where Litestar names its argument (`until`)."""
    try:
        field = request.route_handler.parsed_fn_signature.parameters.get(key)
    except Exception:  # no handler matched: nothing to look it up in
        return key
    return getattr(getattr(field, "kwarg_definition", None), "name", None) or key


# The instants a query takes, as Litestar refuses one: msgspec's words, the pattern as a repr.
_INSTANT_REFUSED = f"Expected `str` matching regex {INSTANT_PATTERN!r}"


def _field_errors(exc: ValidationException, request: Request[Any, Any, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid value"))
        source = getattr(item.get("source"), "value", item.get("source")) or "body"
        key = item.get("key")
        if source == "query" and isinstance(key, str):
            key = _parameter_name(request, key)
            if message.startswith(_INSTANT_REFUSED):
                message = f"`{key}` is not an instant with its offset (e.g. 2026-11-23T10:00:00Z)"
        if source == "body" and key == "data" and message == "'data'":  # no body at all
            errors.append(FieldError("body", "this operation takes a JSON body; none was sent"))
            continue
        found = msgspec_field_error(message)
        errors.append(found or FieldError(f"{source}.{key}" if key else str(source), message))
    return errors


def msgspec_field_error(message: str) -> FieldError | None:
    """msgspec's "Expected `int`, got `str` - at `$.price.amount`" as the body's field and message."""
    text, sep, path = message.rpartition(" - at `")
    if not sep:
        return None
    return FieldError("body" + path.rstrip("`").removeprefix("$"), text)


def validation_problem(errors: list[FieldError], *, instance: str, request_id: str | None) -> Problem:
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return make_problem(
        422, detail, slug="validation-error", instance=instance, request_id=request_id, errors=errors
    )


def validation_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Problem]:
    errors = _field_errors(exc, request)
    malformed = any("malformed" in e.message.lower() or "invalid json" in e.message.lower() for e in errors)
    if malformed or (not errors and "malformed" in exc.detail.lower()):
        status, slug, detail = 400, "malformed-body", "the request body is not valid JSON"
    elif errors:
        return _response(
            validation_problem(errors, instance=request.url.path, request_id=_request_id(request))
        )
    else:
        status, slug, detail = 422, "validation-error", exc.detail
    problem = make_problem(
        status, detail, slug=slug, instance=request.url.path, request_id=_request_id(request), errors=errors
    )
    return _response(problem)


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    status = exc.status_code
    detail = exc.detail if status < 500 else "the server could not complete the request"
    if status == 404 and detail == "Not Found":
        detail = f"no resource at {request.url.path}"
    problem = make_problem(status, detail, instance=request.url.path, request_id=_request_id(request))
    headers = {k: v for k, v in (exc.headers or {}).items()}
    return _response(problem, headers)


def domain_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    for error_type, status, slug in DOMAIN_PROBLEMS:
        if isinstance(exc, error_type):
            field = exc.field if isinstance(exc, DomainError) else None
            detail = exc.detail if isinstance(exc, DomainError) else str(exc)
            errors = [FieldError(field, detail)] if field else None
            problem = make_problem(
                int(status),
                detail,
                slug=slug,
                instance=request.url.path,
                request_id=_request_id(request),
                errors=errors,
            )
            return _response(problem)
    return internal_error_handler(request, exc)


def gateway_handler(request: Request[Any, Any, Any], exc: GatewayError) -> Response[Problem]:
    if isinstance(exc, HostedPagesUnavailable):
        status, slug = 422, "hosted-pages-unavailable"
    else:
        status, slug = (402, "payment-declined") if exc.declined else (502, "payment-gateway-error")
    detail = f"{exc} (Stripe request {exc.request_id})" if exc.request_id else str(exc)
    problem = make_problem(
        status, detail, slug=slug, instance=request.url.path, request_id=_request_id(request)
    )
    return _response(problem)


# What reaching PostgreSQL raises when it is down or went away mid-request: nothing the caller
# did wrong, and worth asking again shortly (a 503 with Retry-After, never a 500).
DATABASE_GONE: tuple[type[Exception], ...] = (
    ConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # The server takes no more clients now, or is starting or stopping: unavailable, not broken.
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
)
RETRY_AFTER = "5"


def database_gone(exc: BaseException) -> bool:
    """Whether an error is the database being unreachable (SQLAlchemy's wrapping seen through)."""
    if isinstance(exc, DBAPIError):
        # The driver's own error is the adapter's cause (asyncpg's, under SQLAlchemy's adapter).
        return exc.connection_invalidated or any(
            isinstance(error, DATABASE_GONE) for error in (exc.orig, getattr(exc.orig, "__cause__", None))
        )
    return isinstance(exc, DATABASE_GONE)


def unavailable_problem(instance: str | None, request_id: str | None) -> Problem:
    return make_problem(
        503,
        "the database cannot be reached; try again in a few seconds",
        slug="database-unavailable",
        instance=instance,
        request_id=request_id,
    )


def database_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    raced = lost_to_another_contract(exc)
    if raced is not None:
        log.warning("a fact's reference was taken by another contract's writer", path=request.url.path)
        return domain_handler(request, raced)
    if not database_gone(exc):
        return internal_error_handler(request, exc)
    log.warning("database unreachable", error=repr(exc), path=request.url.path)
    problem = unavailable_problem(request.url.path, _request_id(request))
    return _response(problem, {"retry-after": RETRY_AFTER})


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    log.error("unhandled error", exc_info=exc, path=request.url.path)
    problem = make_problem(
        500,
        "the server could not complete the request",
        instance=request.url.path,
        request_id=_request_id(request),
    )
    return _response(problem)


def undecodable_part_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    """A multipart part whose text is not in its charset, or names a charset there is none of
    (Litestar's parser decodes each part that has no file name, `filename=""` included, and lets
    the error through): the body is malformed. Raised anywhere else, it is ours: a 500."""
    if not any(
        frame.filename.endswith(_MULTIPART_PARSER) for frame in traceback.extract_tb(exc.__traceback__)
    ):
        return internal_error_handler(request, exc)
    detail = "a part of the multipart body that is not a file is not text in its charset"
    problem = make_problem(
        400, detail, slug="malformed-body", instance=request.url.path, request_id=_request_id(request)
    )
    return _response(problem)


_MULTIPART_PARSER = os.path.join("litestar", "_multipart.py")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ValidationException: validation_handler,
    HTTPException: http_exception_handler,
    DomainError: domain_handler,
    UnknownCurrency: domain_handler,
    CurrencyMismatch: domain_handler,
    SignatureError: domain_handler,
    GatewayError: gateway_handler,
    DBAPIError: database_handler,
    **dict.fromkeys(DATABASE_GONE, database_handler),
    UnicodeDecodeError: undecodable_part_handler,
    LookupError: undecodable_part_handler,
    Exception: internal_error_handler,
}


async def send_problem(send: Any, problem: Problem, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """A problem response from raw ASGI code, outside Litestar's handlers."""
    body = msgspec.json.encode(problem)
    await send(
        {
            "type": "http.response.start",
            "status": problem.status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


ALWAYS = (400, 401, 403, 422, 429)  # bad input, auth, scope, validation, rate limit


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI declarations of the problem responses an operation can give (besides `ALWAYS`)."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_JSON,
            description=HTTPStatus(status).phrase,
            generate_examples=False,
        )
        for status in sorted({*ALWAYS, *statuses})
    }
