"""Customers (the customer information file) and their products."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import access_guard, actor
from api.dependencies import Injected, Services
from api.errors import problem_responses
from api.keys import Scope
from api.links import PortalLink, portal_link
from api.privacy import erase_copies, erase_letters
from api.views import IdempotencyKey
from billing.privacy import redact_stripe_events
from entitlements.catalog import ProductCategory
from entitlements.customers import service as customers
from entitlements.customers.schemas import CustomerInput, CustomerPatch
from entitlements.money import Money
from entitlements.privacy import CustomerExport, erase_customer, export_customer
from entitlements.products import service as products
from entitlements.products.schemas import ProductInput

Id = Annotated[str, PathParameter(min_length=1, max_length=64)]


class CustomerView(msgspec.Struct, frozen=True):
    id: str
    name: str
    country: str
    locale: str
    time_zone: str  # IANA; "UTC" for a customer recorded before zones whose country has several
    marketing_consent: bool
    external_ref: str | None
    email: str | None
    phone: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: Any) -> CustomerView:
        return cls(
            row.id,
            row.name,
            row.country,
            row.locale,
            row.time_zone or "UTC",
            row.marketing_consent,
            row.external_ref,
            row.email,
            row.phone,
            row.created_at,
            row.updated_at,
        )


class CustomerList(msgspec.Struct, frozen=True):
    data: list[CustomerView]


class ProductView(msgspec.Struct, frozen=True):
    id: str
    customer_id: str
    sku: str
    category: ProductCategory
    price: Money
    purchase_date: dt.date
    warranty_months: int
    serial: str | None
    imei: str | None
    order_ref: str | None
    created_at: dt.datetime
    warranty_labour_months: int  # the manufacturer's on labour (the parts' months unless told)

    @classmethod
    def of(cls, row: Any) -> ProductView:
        return cls(
            row.id,
            row.customer_id,
            row.sku,
            ProductCategory(row.category),
            Money(row.price_amount, row.currency),
            row.purchase_date,
            row.warranty_months,
            row.serial,
            row.imei,
            row.order_ref,
            row.created_at,
            row.warranty_months if row.warranty_labour_months is None else row.warranty_labour_months,
        )


WRITE = frozenset({Scope.CHECKOUT, Scope.SUPPORT, Scope.ADMIN})
POST_PROBLEMS = problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429)


class ErasureView(msgspec.Struct, frozen=True):
    customer_id: str
    erased_at: dt.datetime
    already_erased: bool  # erased before: nothing changed now
    stripe_events_redacted: int
    replays_deleted: int
    letters_deleted: int


class CustomerController(Controller):
    path = "/v1/customers"
    tags = ["customers"]
    guards = [access_guard]
    opt = {"access": WRITE}  # finance sees no PII

    @post(summary="Create a customer", responses=POST_PROBLEMS)
    async def create_customer(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[CustomerInput],
        idempotency_key: IdempotencyKey = None,
    ) -> CustomerView:
        return CustomerView.of(await customers.create_customer(db_session, data, actor(request)))

    @get(
        summary="Find customers by external ref, email or phone (normalized)",
        responses=problem_responses(400, 401, 403, 422, 429),
    )
    async def find_customers(
        self,
        db_session: NamedDependency[AsyncSession],
        external_ref: Annotated[str | None, QueryParameter(max_length=128, required=False)] = None,
        email: Annotated[str | None, QueryParameter(max_length=254, required=False)] = None,
        phone: Annotated[str | None, QueryParameter(max_length=32, required=False)] = None,
    ) -> CustomerList:
        rows = await customers.find_customers(db_session, external_ref=external_ref, email=email, phone=phone)
        return CustomerList([CustomerView.of(r) for r in rows])

    @get("/{customer_id:str}", summary="One customer", responses=problem_responses(400, 401, 403, 404, 429))
    async def get_customer(self, db_session: NamedDependency[AsyncSession], customer_id: Id) -> CustomerView:
        return CustomerView.of(await customers.customer(db_session, customer_id))

    @post(
        "/{customer_id:str}/portal-links",
        summary="A link to the customer's portal (proof of coverage, claims, cancellation, card), "
        "good for 7 days",
        responses=problem_responses(400, 401, 403, 404, 413, 415, 429),
    )
    async def create_portal_link(
        self,
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        customer_id: Id,
        idempotency_key: IdempotencyKey = None,
    ) -> PortalLink:
        customer = await customers.customer(db_session, customer_id)
        return portal_link(services.settings, customer.id, dt.datetime.now(dt.UTC))

    @get(
        "/{customer_id:str}/export",
        summary="Everything held about the person: customer, products, contracts, claims, evidence, history",
        responses=problem_responses(400, 401, 403, 404, 429),
        opt={"access": frozenset({Scope.SUPPORT, Scope.ADMIN})},
    )
    async def export(self, db_session: NamedDependency[AsyncSession], customer_id: Id) -> CustomerExport:
        return await export_customer(db_session, customer_id)

    @post(
        "/{customer_id:str}/erase",
        summary="Erase the person: name, email, phone, external ref tombstoned everywhere they are "
        "kept; ids stay, so finance reconciles and the check answers by serial (admin)",
        responses=problem_responses(400, 401, 403, 404, 413, 415, 429),
        status_code=200,
        opt={"access": frozenset({Scope.ADMIN})},
    )
    async def erase(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        customer_id: Id,
        idempotency_key: IdempotencyKey = None,
    ) -> ErasureView:
        erasure = await erase_customer(
            db_session, customer_id, actor=actor(request), now=dt.datetime.now(dt.UTC)
        )
        events = replays = letters = 0
        if not erasure.already:
            if erasure.stripe_customer_id:
                events = await redact_stripe_events(db_session, erasure.stripe_customer_id)
            replays = await erase_copies(db_session, erasure, services.replay_seal)
            letters = erase_letters(services.settings, erasure.email)
        return ErasureView(erasure.customer_id, erasure.erased_at, erasure.already, events, replays, letters)

    @patch("/{customer_id:str}", summary="Update a customer", responses=POST_PROBLEMS)
    async def update_customer(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        customer_id: Id,
        data: JSONBody[CustomerPatch],
    ) -> CustomerView:
        return CustomerView.of(await customers.update_customer(db_session, customer_id, data, actor(request)))


class ProductController(Controller):
    path = "/v1/products"
    tags = ["products"]
    guards = [access_guard]
    opt = {"access": WRITE}

    @post(summary="Register a covered product (serial and/or IMEI)", responses=POST_PROBLEMS)
    async def register_product(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[ProductInput],
        idempotency_key: IdempotencyKey = None,
    ) -> ProductView:
        return ProductView.of(await products.register_product(db_session, data, actor(request)))

    @get("/{product_id:str}", summary="One product", responses=problem_responses(400, 401, 403, 404, 429))
    async def get_product(self, db_session: NamedDependency[AsyncSession], product_id: Id) -> ProductView:
        return ProductView.of(await products.product(db_session, product_id))
