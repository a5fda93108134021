"""The page a marketing letter's unsubscribe link opens, and its one-click form (RFC 8058): no
key, the signed token in the link names the customer. Service letters are not affected."""

from __future__ import annotations

import html
from typing import Annotated

from litestar import Controller, MediaType, Response, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.dependencies import Injected, Services
from api.errors import problem_responses
from api.mail import right_to_left, unsubscribed_customer
from api.settings import Settings
from entitlements.catalog import DEFAULT_LOCALE
from entitlements.customers import service as customers
from entitlements.customers.schemas import CustomerPatch
from entitlements.errors import NotFound
from entitlements.summary_texts import EMAILS
from entitlements.translations import translate

Token = Annotated[str, PathParameter(min_length=3, max_length=80)]


def _page(locale: str, text: str, form: str = "") -> Response[str]:
    title = translate(locale, "unsubscribe_title", EMAILS["unsubscribe_title"])
    direction = "rtl" if right_to_left(locale) else "ltr"
    body = (
        f'<!doctype html><html lang="{locale}" dir="{direction}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>{html.escape(title)}</title></head>'
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{form}</body></html>"
    )
    return Response(body, media_type=MediaType.HTML, headers={"content-language": locale})


class UnsubscribeController(Controller):
    path = "/v1/unsubscribe"
    tags = ["customers"]
    security = [{}]

    async def _customer_locale(
        self, settings: Settings, session: AsyncSession, token: str
    ) -> tuple[str, str]:
        customer_id = unsubscribed_customer(settings, token)
        if customer_id is None:
            raise NotFound("this unsubscribe link is not one of ours", field="token")
        customer = await customers.customer(session, customer_id)
        return customer.id, customer.locale or DEFAULT_LOCALE

    @get(
        "/{token:str}",
        summary="The page a marketing letter's unsubscribe link opens (no key: the link is signed)",
        responses=problem_responses(404),
        media_type=MediaType.HTML,
    )
    async def page(
        self, services: Injected[Services], db_session: NamedDependency[AsyncSession], token: Token
    ) -> Response[str]:
        _, locale = await self._customer_locale(services.settings, db_session, token)
        button = translate(locale, "unsubscribe_button", EMAILS["unsubscribe_button"])
        form = f'<form method="post"><button type="submit">{html.escape(button)}</button></form>'
        return _page(locale, translate(locale, "unsubscribe_ask", EMAILS["unsubscribe_ask"]), form)

    @post(
        "/{token:str}",
        summary="Receive no more marketing letters (RFC 8058 one-click, or the page's button)",
        responses=problem_responses(404),
        media_type=MediaType.HTML,
        status_code=200,
    )
    async def unsubscribe(
        self, services: Injected[Services], db_session: NamedDependency[AsyncSession], token: Token
    ) -> Response[str]:
        customer_id, locale = await self._customer_locale(services.settings, db_session, token)
        withdrawn = CustomerPatch(marketing_consent=False)
        await customers.update_customer(db_session, customer_id, withdrawn, "customer:unsubscribe")
        return _page(locale, translate(locale, "unsubscribe_done", EMAILS["unsubscribe_done"]))
