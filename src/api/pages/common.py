"""What every page shares: its templates (Jinja, autoescaped), its language and direction, its
words from the gettext catalogs, its CSRF token, and errors shown as a page rather than JSON."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request, Response
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.types import ExceptionHandlersMap
from sqlalchemy.ext.asyncio import AsyncSession

from api.dependencies import Services
from api.errors import EXCEPTION_HANDLERS, Problem
from api.pages import TEMPLATES, asset
from api.pages.forms import form_reference
from api.pages.security import CSRF_FIELD, csrf_token, with_csrf_cookie
from billing.cancellation.service import cancel_contract
from entitlements.clock import utcnow
from entitlements.contracts import service as use_cases
from entitlements.coverage import ContractStatus
from entitlements.errors import Conflict
from entitlements.localization import fill, negotiate_locale, normalize_locale
from entitlements.money import Money
from entitlements.summary_texts import PAGES
from entitlements.translations import languages, translate

RIGHT_TO_LEFT = frozenset({"ar"})
PAGE_LOCALE = "page_locale"  # the request's state: the language of whoever the page is for
# An HTML form's fields, as the browser posts them.
FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
HTML = "text/html"


@cache
def environment() -> Environment:
    templates = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.globals["asset"] = asset
    templates.globals["form_reference"] = form_reference
    templates.globals["fill"] = fill  # one stop where an amount ends in one (ر.س.) before the sentence's
    return templates


def visitor_locale(request: Request[Any, Any, Any], explicit: str | None = None) -> str:
    """A visitor's language: `explicit` (a page's `?lang=`), else their browser's Accept-Language
    by q-value, as the API negotiates it; else English."""
    return negotiate_locale(explicit, request.headers.get("accept-language"))


def page_locale(raw: str | None, fallback: str = "en") -> str:
    found = normalize_locale(raw) if raw else None
    return found if found in languages() else fallback


@cache
def words(locale: str) -> dict[str, str]:
    """The pages' texts in `locale` (English where a text is not translated)."""
    return {key: translate(locale, key, message) for key, message in PAGES.items()}


def render(template: str, locale: str, **context: Any) -> str:
    return (
        environment()
        .get_template(template)
        .render(t=words(locale), lang=locale, dir="rtl" if locale in RIGHT_TO_LEFT else "ltr", **context)
    )


def page(
    request: Request[Any, Any, Any],
    template: str,
    locale: str = "en",
    status_code: int = 200,
    **context: Any,
) -> Response[str]:
    """A page in `locale`; its forms carry the CSRF token (and the cookie it is made from is set
    on first visit). Kept by no cache: pages show customers and contracts."""
    html = render(template, locale, csrf=csrf_token(request), csrf_field=CSRF_FIELD, **context)
    response = Response(html, status_code=status_code, media_type=HTML, headers={"cache-control": "no-store"})
    return with_csrf_cookie(request, response)


def _problem(request: Request[Any, Any, Any], exc: Exception) -> Problem:
    for kind in type(exc).__mro__:
        handler = EXCEPTION_HANDLERS.get(kind)
        if handler is not None:
            answer: Response[Problem] = handler(request, exc)
            return answer.content
    raise exc


# An error page's heading and its words, by the problem's status (the page texts' keys).
_ERROR_TEXTS = {
    400: ("error_title_form", "error_form"),
    413: ("error_title_form", "error_form"),
    415: ("error_title_form", "error_form"),
    422: ("error_title_form", "error_form"),
    401: ("error_title_refused", "page_refused"),
    403: ("error_title_refused", "page_refused"),
    404: ("error_title_not_found", "page_refused"),
    409: ("error_title_conflict", "error_conflict"),
    429: ("error_title_busy", "error_busy"),
}


def error_texts(status: int, detail: str | None, locale: str) -> tuple[str, str]:
    """An error page's heading and words in `locale`: the problem's own detail where it is in
    that language (English, or a page text already translated), else the words for its status."""
    texts = words(locale)
    title, said = _ERROR_TEXTS.get(
        status,
        ("error_title_server", "error_server") if status >= 500 else ("error_title_other", "page_refused"),
    )
    own = bool(detail) and status < 500 and (locale == "en" or detail in texts.values())
    return texts[title], detail if own and detail else texts[said]


def error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    """A problem, as a page: its status and what went wrong, in words a person reads, in the
    visitor's language."""
    problem = _problem(request, exc)
    # A page's own `?lang=`, else the language of whoever the page is for (a portal page is its
    # customer's, once the session is read), else the browser's.
    locale = visitor_locale(request, request.query_params.get("lang") or request.state.get(PAGE_LOCALE))
    title, detail = error_texts(problem.status, problem.detail, locale)
    html = render("error.html", locale, title=title, detail=detail)
    headers = {"cache-control": "no-store"}
    if problem.status == 405 and (allow := getattr(exc, "headers", None) or {}).get("Allow"):
        headers["allow"] = allow["Allow"]
    return Response(html, status_code=problem.status, media_type=HTML, headers=headers)


# Every kind the API answers with a problem, a page answers with a page (the most specific
# handler wins across layers, so each kind is named here too).
PAGE_ERRORS: ExceptionHandlersMap = dict.fromkeys(EXCEPTION_HANDLERS, error_page)


async def cancel_from_page(
    session: AsyncSession, services: Services, contract_id: str, expected: Money, actor: str
) -> bool:
    """Cancel as a page's form asks: True when this request cancelled the contract; False when
    it found it cancelled already, as the form sent twice does (a double click: the second
    waits for the first, then shows what the first did, not an error)."""
    try:
        await cancel_contract(
            session,
            services.gateway,
            contract_id,
            expected_refund=expected,
            at=utcnow(),
            actor=actor,
            lease_seconds=services.settings.idempotency_lease_seconds,
            wait=True,
        )
    except Conflict:
        if (await use_cases.contract(session, contract_id)).status != ContractStatus.CANCELLED.value:
            raise
        return False
    return True
