"""The checkout widget's script, a demo merchant's checkout that uses it, and the sandbox's own
pages where Stripe's hosted pages would be (paying a Checkout Session, replacing a card)."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import secrets
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from api.dependencies import Injected, Services
from api.pages import HERE
from api.pages.common import PAGE_ERRORS, FormData, page, page_locale, visitor_locale, words
from api.pages.security import check_csrf
from api.routes.billing import deliver_sandbox_events
from billing.gateway import Gateway
from billing.sandbox import DECLINES, GOOD_CARD, SandboxGateway
from entitlements.errors import InvalidInput
from entitlements.localization import format_money
from entitlements.money import Money
from entitlements.translations import languages

WIDGET_TEXTS = "/*COVERLINE_TEXTS*/{}"


@cache
def _widget() -> tuple[bytes, bytes, str]:
    """The widget's script with its words in every language, gzipped, and its ETag."""
    texts = {
        locale: {
            key.removeprefix("widget_"): text
            for key, text in words(locale).items()
            if key.startswith("widget_")
        }
        for locale in languages()
    }
    source = (HERE / "coverline.js").read_text()
    body = source.replace(WIDGET_TEXTS, json.dumps(texts, ensure_ascii=False, sort_keys=True), 1).encode()
    return body, gzip.compress(body, 9, mtime=0), '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


@get(
    "/widget/v1/coverline.js",
    include_in_schema=False,
    media_type="text/javascript",  # Litestar adds the charset to a text type
    exception_handlers=PAGE_ERRORS,
)
async def widget_script(request: Request[Any, Any, Any]) -> Response[bytes]:
    """`<coverline-offers>`: merchants link this URL, so it is cached for minutes, not a year.
    Gzipped for a browser that takes it (every browser does): 41% of the bytes."""
    body, zipped, etag = _widget()
    gzipped = _takes_gzip(request.headers.get("accept-encoding", ""))
    if gzipped:  # each representation its own validator (RFC 9110, 8.8.3)
        body, etag = zipped, etag[:-1] + '-gz"'
    headers = {
        "etag": etag,
        "cache-control": "public, max-age=300",
        "vary": "accept-encoding",
        # Public, and sent with no cookie: a merchant's page may load it with `crossorigin`
        # (for Subresource Integrity or error reports).
        "access-control-allow-origin": "*",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(b"", status_code=304, headers=headers)
    return Response(body, headers={**headers, "content-encoding": "gzip"} if gzipped else headers)


def _takes_gzip(accepted: str) -> bool:
    """Whether an Accept-Encoding takes gzip: named (or `*`) without `q=0`."""
    for part in accepted.lower().split(","):
        coding, _, params = part.partition(";")
        if coding.strip() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=")
            return not (params and quality.replace("0", "").strip(".") == "")
    return False


# --- The demo merchant ------------------------------------------------------------------------

# A phone in each language's market, priced in its currency (minor units).
DEMO_CARTS: dict[str, tuple[str, str, int]] = {
    "en": ("US", "USD", 69900),
    "fil": ("PH", "PHP", 2499000),
    "hi": ("IN", "INR", 2999900),
    "sv": ("SE", "SEK", 699900),
    "ar": ("SA", "SAR", 179900),
    "vi": ("VN", "VND", 9990000),
}
DEMO_SKU, DEMO_PRODUCT = "PH-DEMO-X55", "Phone X55"


class DemoOrder:
    """The demo merchant's back end: it holds the secret key and calls Coverline's API, as a
    merchant's own server would."""

    def __init__(self, base: str, secret_key: str) -> None:
        self.base = base.rstrip("/")
        self.headers = {"authorization": f"Bearer {secret_key}"}

    async def post(self, http: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {**self.headers, "idempotency-key": secrets.token_hex(16)}
        async with http.post(self.base + path, json=body, headers=headers) as answer:
            found: dict[str, Any] = await answer.json(content_type=None)
            if answer.status >= 400:
                raise InvalidInput(f"{path}: {found.get('detail') or found.get('title')}")
            return found


def _cart(locale: str) -> dict[str, Any]:
    country, currency, amount = DEMO_CARTS[locale]
    price = Money(amount, currency)
    return {
        "country": country,
        "currency": currency,
        "amount": amount,
        "display": format_money(price, locale),
        "sku": DEMO_SKU,
        "name": DEMO_PRODUCT,
        "purchase_date": dt.datetime.now(dt.UTC).date().isoformat(),
    }


def hosted_page_url(checkout_url: str, locale: str) -> str:
    """Stripe's page as it is; the sandbox's own page (`/sandbox/checkout/…`, `/sandbox/billing/…`)
    in the visitor's language, here."""
    path = urlsplit(checkout_url.replace("sandbox://", "sandbox:///sandbox/", 1)).path
    if path.startswith(("/sandbox/checkout/", "/sandbox/billing/")):
        return f"{path}?lang={locale}"
    return checkout_url


class DemoCheckoutController(Controller):
    path = "/demo/checkout"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    @get()
    async def checkout_page(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        lang: FromQuery[str | None] = None,
    ) -> Response[str]:
        settings = services.settings
        locale = visitor_locale(request, lang)
        return page(
            request,
            "shop/checkout.html",
            locale,
            cart=_cart(locale),
            publishable_key=settings.demo_publishable_key,
            ready=bool(settings.demo_publishable_key and settings.demo_secret_key),
        )

    @post(status_code=303)
    async def place_order(
        self, request: Request[Any, Any, Any], services: Injected[Services], data: FormData
    ) -> Redirect:
        check_csrf(request, data)
        locale = page_locale(data.get("lang"))
        secret = services.settings.demo_secret_key
        if secret is None:
            raise NotFoundException("the demo merchant has no key: run `make run`")
        cart = _cart(locale)
        name, email = data.get("name", "").strip(), data.get("email", "").strip()
        if not name:
            raise InvalidInput("give your name", field="name")
        merchant = DemoOrder(str(request.base_url), secret)
        base = str(request.base_url).rstrip("/")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            customer = await merchant.post(
                http,
                "/v1/customers",
                {
                    "name": name,
                    "country": cart["country"],
                    "locale": locale,
                    **({"email": email} if email else {}),
                    **({"time_zone": "America/New_York"} if cart["country"] == "US" else {}),
                },
            )
            product = await merchant.post(
                http,
                "/v1/products",
                {
                    "customer_id": customer["id"],
                    "sku": cart["sku"],
                    "category": "phone",
                    "price": {"amount": cart["amount"], "currency": cart["currency"]},
                    "purchase_date": cart["purchase_date"],
                    "serial": "DEMO" + secrets.token_hex(5).upper(),
                },
            )
            token = data.get("offer_token", "")
            if not token:
                return Redirect(f"/demo/checkout/done?lang={locale}", status_code=303)
            sale = await merchant.post(
                http,
                "/v1/checkouts",
                {
                    "offer_token": token,
                    "customer_id": customer["id"],
                    "product_id": product["id"],
                    "hosted": {
                        "success_url": f"{base}/demo/checkout/done?lang={locale}&plan=1",
                        "cancel_url": f"{base}/demo/checkout?lang={locale}",
                    },
                },
            )
        return Redirect(hosted_page_url(sale["checkout_url"], locale), status_code=303)

    @get("/done")
    async def done(
        self, request: Request[Any, Any, Any], lang: FromQuery[str | None] = None, plan: FromQuery[int] = 0
    ) -> Response[str]:
        return page(request, "shop/done.html", page_locale(lang), plan=bool(plan))


# --- The sandbox's hosted pages -------------------------------------------------------------


def _sandbox(gateway: Gateway) -> SandboxGateway:
    if not isinstance(gateway, SandboxGateway):
        raise NotFoundException("this page exists only with the sandbox gateway")
    return gateway


# The sandbox pages' test cards: one that pays, one that is declined.
TEST_CARDS = (GOOD_CARD, next(iter(DECLINES)))


def _cards(locale: str) -> list[tuple[str, str]]:
    t = words(locale)
    return list(zip(TEST_CARDS, (t["sandbox_card_pays"], t["sandbox_card_declined"]), strict=True))


class SandboxPageController(Controller):
    """Where Stripe's hosted pages would be, for the offline sandbox: pay a Checkout Session, or
    replace the card renewals are charged to."""

    path = "/sandbox"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    @get("/checkout/{session_id:str}")
    async def checkout_page(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        session_id: FromPath[str],
        lang: FromQuery[str | None] = None,
    ) -> Response[str]:
        return self._checkout(request, _sandbox(services.gateway), session_id, page_locale(lang))

    def _checkout(
        self,
        request: Request[Any, Any, Any],
        sandbox: SandboxGateway,
        session_id: str,
        locale: str,
        declined: bool = False,
    ) -> Response[str]:
        session, price = sandbox.checkout_session(session_id), sandbox.checkout_price(session_id)
        amount = format_money(Money(price.unit_amount, price.currency), locale)
        return page(
            request,
            "shop/pay.html",
            locale,
            status_code=402 if declined else 200,
            action=f"/sandbox/checkout/{session_id}",
            amount=amount,
            product=price.product_name,
            cards=_cards(locale),
            declined=declined,
            complete=session.status == "complete",
        )

    @post("/checkout/{session_id:str}", status_code=303)
    async def pay(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        session_id: FromPath[str],
        data: FormData,
    ) -> Response[Any]:
        check_csrf(request, data)
        locale = page_locale(data.get("lang"))
        sandbox = _sandbox(services.gateway)
        card = data.get("card", "")
        if card not in TEST_CARDS:
            raise InvalidInput("choose one of the test cards", field="card")
        status = await sandbox.complete_checkout_session(session_id, card)
        await deliver_sandbox_events(sandbox, services.db, services.settings)
        if status != "complete":
            return self._checkout(request, sandbox, session_id, locale, declined=True)
        return Redirect(sandbox.checkout_session(session_id).success_url or "/", status_code=303)

    @get("/billing/{customer:str}")
    async def card_page(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        customer: FromPath[str],
        lang: FromQuery[str | None] = None,
    ) -> Response[str]:
        sandbox = _sandbox(services.gateway)
        if customer not in sandbox.customers:
            raise NotFoundException("no such customer")
        locale = page_locale(lang)
        return page(
            request,
            "shop/card.html",
            locale,
            action=f"/sandbox/billing/{customer}",
            cards=_cards(locale),
            current=sandbox.card_of(customer),
        )

    @post("/billing/{customer:str}", status_code=303)
    async def save_card(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        customer: FromPath[str],
        data: FormData,
    ) -> Redirect:
        check_csrf(request, data)
        sandbox = _sandbox(services.gateway)
        if customer not in sandbox.customers or data.get("card") not in TEST_CARDS:
            raise InvalidInput("choose one of the test cards", field="card")
        await sandbox.attach_payment_method(customer, data["card"], key=secrets.token_hex(8))
        return Redirect(sandbox.card_return_urls.get(customer) or "/", status_code=303)
