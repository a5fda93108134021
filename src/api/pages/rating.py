"""/rate: the page a satisfaction letter links to, signed for one request and good until it
expires. The customer gives a rating from 1 to 5 and a comment, once; every customer who answers
is then offered the merchant's review link when one is configured (`COVERLINE_REVIEW_URL`),
whatever their rating: offering it only to the satisfied would be review gating."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from api.dependencies import Injected, Services
from api.links import SATISFACTION, subject_of
from api.pages.common import PAGE_ERRORS, FormData, page, page_locale, visitor_locale, words
from api.pages.security import check_csrf
from api.settings import Settings
from entitlements.clock import utcnow
from entitlements.errors import Conflict, InvalidInput, NotFound
from entitlements.identifiers import ascii_digits
from entitlements.satisfaction import service
from entitlements.satisfaction.rules import RATINGS
from entitlements.summary_texts import BENEFITS
from entitlements.translations import translate


def _refused(locale: str) -> PermissionDeniedException:
    return PermissionDeniedException(words(locale)["rate_link_refused"])


async def _open(
    session: AsyncSession, request: Request[Any, Any, Any], settings: Settings, token: str
) -> tuple[Any, str, str]:
    """The request the link names, still open; its customer's language; and what it asks about,
    in that language."""
    request_id = subject_of(settings, SATISFACTION, token, utcnow())
    if request_id is None:
        raise _refused(visitor_locale(request))
    try:
        row = await service.open_request(session, request_id, utcnow())
    except (NotFound, Conflict):  # one answer to a spent link and to a request never made
        raise _refused(visitor_locale(request)) from None
    kind, customer_locale = await service.asked_about(session, row)
    locale = page_locale(customer_locale, visitor_locale(request))
    about = translate(locale, "benefit", BENEFITS[kind]) if kind else words(locale)["rate_about_repair"]
    return row, locale, about


class RatingController(Controller):
    path = "/rate"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    @get("/{token:str}")
    async def form(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        token: FromPath[str],
    ) -> Response[str]:
        _, locale, about = await _open(db_session, request, services.settings, token)
        t = words(locale)
        return page(
            request,
            "rating/form.html",
            locale,
            token=token,
            about=about,
            scale=[(value, t[f"rate_{value}"]) for value in reversed(RATINGS)],
        )

    @post("/{token:str}", status_code=200)
    async def answer(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        token: FromPath[str],
        data: FormData,
    ) -> Response[str]:
        check_csrf(request, data)
        row, locale, _ = await _open(db_session, request, services.settings, token)
        raw = data.get("rating", "")
        if not (ascii_digits(raw) and int(raw) in RATINGS):
            raise InvalidInput(words(locale)["rate_question"], field="rating")
        await service.answer(db_session, row.id, int(raw), data.get("comment"), now=utcnow())
        return page(request, "rating/done.html", locale, review_url=services.settings.review_url)
