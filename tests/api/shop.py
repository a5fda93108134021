"""A checkout and a help desk, driven through the API, for the contract and claim tests."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from api.app import CoverlineApp
from entitlements.catalog import (
    Billing,
    ClaimLimits,
    ClaimReview,
    ClaimWindow,
    Coverage,
    CoverageKind,
    CoverageStart,
    Eligibility,
    Plan,
    PlanText,
    PriceBand,
    ProductCategory,
)
from entitlements.store.plans import PlanRepository
from tests.conftest import Keys

# The test customers' zone (`Shop.customer`: in the US, in New York): an incident's date is theirs,
# and at 00:30 UTC it is still yesterday there.
CUSTOMER_ZONE = "America/New_York"


def customer_today() -> dt.date:
    return dt.datetime.now(ZoneInfo(CUSTOMER_ZONE)).date()


TEXTS = {
    "en": PlanText("Screen Guard", "Repairs for breakdowns and cracked screens", "Terms"),
    "sv": PlanText("Skärmskydd", "Reparation vid fel och spruckna skärmar", "Villkor"),
    "ar": PlanText("حماية الشاشة", "إصلاح الأعطال والشاشات المكسورة", "الشروط"),
}


def plan_for_tests(**overrides: Any) -> Plan:
    values: dict[str, Any] = {
        "code": "test-screen-guard",
        "version": 1,
        "texts": TEXTS,
        "coverages": [
            Coverage(CoverageKind.MECHANICAL_BREAKDOWN),
            Coverage(CoverageKind.SCREEN, {"USD": 2900, "SAR": 9900, "VND": 500000}),
        ],
        "term_months": 24,
        "billing": Billing.UPFRONT,
        "eligibility": Eligibility([ProductCategory.PHONE], max_days_since_purchase=365),
        "prices": [PriceBand("USD", 0, 7900), PriceBand("SAR", 0, 29900), PriceBand("VND", 0, 1_500_000)],
        "waiting_period_days": 30,
        "claim_limits": ClaimLimits(count=2, window=ClaimWindow.TERM, aggregate_up_to_product_price=True),
    }
    values.update(overrides)
    return Plan(**values)


TEST_PLANS = [
    plan_for_tests(),
    plan_for_tests(
        code="test-reviewed",
        waiting_period_days=0,
        coverages=[
            Coverage(CoverageKind.SCREEN, {"USD": 2900}),
            Coverage(CoverageKind.THEFT_LOSS, {"USD": 9900}),
        ],
        claim_limits=ClaimLimits(count=2, filing_window_days=30),
        claim_review=ClaimReview(
            amount_over={"USD": 50000}, theft_loss=True, repeat_within_days=90, claims_in_30_days=3
        ),
    ),
    plan_for_tests(
        code="test-monthly", billing=Billing.MONTHLY, term_months=1, auto_renew=True, waiting_period_days=0
    ),
    plan_for_tests(
        code="test-after-warranty",
        coverage_start=CoverageStart.AFTER_MANUFACTURER_WARRANTY,
        coverages=[Coverage(CoverageKind.MECHANICAL_BREAKDOWN)],
        claim_limits=ClaimLimits(count=3, window=ClaimWindow.ROLLING_12_MONTHS),
    ),
]


async def publish_test_plans(app: CoverlineApp) -> None:
    async with app.state.db.sessions() as session, session.begin():
        await PlanRepository(session).publish(TEST_PLANS)


class Shop:
    def __init__(self, client: httpx.AsyncClient, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    async def call(self, method: str, path: str, who: str = "admin", **kwargs: Any) -> Any:
        response = await self.client.request(method, path, headers=self.keys.auth(who), **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    async def customer(self, **overrides: Any) -> dict[str, Any]:
        body = {
            "name": "Maria Santos",
            "country": "US",
            "email": f"m{secrets.token_hex(3)}@example.com",
            "locale": "en",
        }
        body.update(overrides)
        if body["country"] == "US":  # several clocks: the zone is asked for
            body.setdefault("time_zone", CUSTOMER_ZONE)
        result: dict[str, Any] = await self.call("POST", "/v1/customers", "checkout", json=body)
        return result

    async def product(
        self,
        customer_id: str,
        *,
        price: int = 80000,
        currency: str = "USD",
        purchase_date: dt.date | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        body = {
            "customer_id": customer_id,
            "sku": "PHONE-1",
            "category": "phone",
            "price": {"amount": price, "currency": currency},
            "purchase_date": (purchase_date or dt.date.today()).isoformat(),
            "serial": extra.pop("serial", f"SN{secrets.token_hex(5)}"),
            **extra,
        }
        result: dict[str, Any] = await self.call("POST", "/v1/products", "checkout", json=body)
        return result

    async def offer_token(
        self, product: dict[str, Any], plan_code: str | None = None, country: str = "US"
    ) -> str:
        """The signed offer for a registered product: for `plan_code`, or the first offered."""
        facts = {k: product[k] for k in ("sku", "price", "purchase_date", "serial")}
        offers = await self.call(
            "POST",
            "/v1/offers",
            "publishable",
            json={"product": {"category": "phone", "country": country, **facts}},
        )
        token: str = next(
            o["offer_token"] for o in offers["offers"] if plan_code in (None, o["plan"]["code"])
        )
        return token

    async def checkout_request(
        self, plan_code: str, card: str | None = "pm_card_visa"
    ) -> tuple[dict[str, Any], str]:
        """A new customer and product, the body that checks them out under `plan_code`, and the
        product's serial."""
        buyer = await self.customer()
        product = await self.product(buyer["id"])
        token = await self.offer_token(product, plan_code)
        request = {"offer_token": token, "customer_id": buyer["id"], "product_id": product["id"]}
        if card:
            request["payment_method"] = card
        return request, str(product["serial"])

    async def checkout(self, plan_code: str, card: str | None = "pm_card_visa") -> dict[str, Any]:
        request, serial = await self.checkout_request(plan_code, card)
        result: dict[str, Any] = await self.call("POST", "/v1/checkouts", "checkout", json=request)
        result["serial"] = serial
        return result

    async def sell(
        self,
        plan_code: str = "test-screen-guard",
        *,
        purchase_date: dt.date | None = None,
        pay: bool = True,
        country: str = "US",
        currency: str = "USD",
        price: int = 80000,
        warranty_months: int = 12,
    ) -> dict[str, Any]:
        """Customer → product → offer → contract → payment; the contract as the API shows it."""
        customer = await self.customer(country=country)
        product = await self.product(
            customer["id"],
            price=price,
            currency=currency,
            purchase_date=purchase_date,
            warranty_months=warranty_months,
        )
        contract = await self.open_contract(customer, product, plan_code, country=country)
        if pay:
            contract = await self.lifecycle(contract["id"], "payment", f"pay-{contract['id']}")
        contract["serial"] = product["serial"]
        contract["customer"] = customer
        return contract

    async def open_contract(
        self,
        customer: dict[str, Any],
        product: dict[str, Any],
        plan_code: str = "test-screen-guard",
        *,
        country: str = "US",
    ) -> dict[str, Any]:
        """The customer's registered product under contract from its signed offer, unpaid."""
        token = await self.offer_token(product, plan_code, country=country)
        contract: dict[str, Any] = await self.call(
            "POST",
            "/v1/contracts",
            "checkout",
            json={"offer_token": token, "customer_id": customer["id"], "product_id": product["id"]},
        )
        return contract

    async def lifecycle(
        self, contract_id: str, action: str, reference: str, at: dt.datetime | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"action": action, "reference": reference}
        if at is not None:
            body["at"] = at.isoformat()
        result: dict[str, Any] = await self.call("POST", f"/v1/contracts/{contract_id}/lifecycle", json=body)
        return result

    async def check(self, who: str = "support", **params: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", "/v1/entitlements", who, params=params)
        return result

    async def claim(self, expect: int = 201, agent: str | None = None, **body: Any) -> dict[str, Any]:
        body.setdefault("reference", f"ticket-{secrets.token_hex(4)}")
        body.setdefault("incident_kind", "screen")
        body.setdefault("incident_date", customer_today().isoformat())
        body.setdefault("amount", {"amount": 15000, "currency": "USD"})
        headers = self.keys.auth("support") | ({"Coverline-Agent": agent} if agent else {})
        response = await self.client.post("/v1/claims", json=body, headers=headers)
        assert response.status_code == expect, response.text
        result: dict[str, Any] = response.json()
        return result
