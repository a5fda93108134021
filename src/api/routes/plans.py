from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import access_guard
from api.dependencies import Injected, Services
from api.errors import problem_responses
from api.keys import PUBLISHABLE, Scope
from api.views import LocaleQuery, PlanView, caller_locale
from entitlements import published
from entitlements.catalog import ProductCategory
from entitlements.errors import NotFound


class PlanList(msgspec.Struct, frozen=True):
    data: list[PlanView]


class PlanController(Controller):
    path = "/v1/plans"
    tags = ["plans"]
    guards = [access_guard]
    opt = {"access": frozenset({PUBLISHABLE, *Scope})}

    @get(
        summary="List the newest version of each plan",
        responses=problem_responses(400, 401, 403, 429),
    )
    async def list_plans(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        category: FromQuery[ProductCategory | None] = None,
        currency: Annotated[str | None, QueryParameter(pattern=r"^[A-Z]{3}$", required=False)] = None,
        active: FromQuery[bool | None] = None,
        locale: LocaleQuery = None,
    ) -> Response[PlanList]:
        chosen = caller_locale(request, locale)
        plans = [
            plan
            for plan in await published.latest(db_session)
            if (category is None or category in plan.eligibility.categories)
            and (currency is None or currency in plan.currencies())
            and (active is None or plan.active is active)
        ]
        return Response(
            PlanList([PlanView.of(plan, chosen, await published.terms(db_session, plan)) for plan in plans]),
            headers={"content-language": chosen},
        )

    @get(
        "/{code:str}",
        summary="One plan: its newest version, or the version asked for",
        responses=problem_responses(400, 401, 403, 404, 429),
    )
    async def get_plan(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        code: Annotated[str, PathParameter(min_length=1, max_length=64)],
        version: Annotated[int | None, QueryParameter(ge=1, le=1_000_000, required=False)] = None,
        locale: LocaleQuery = None,
    ) -> Response[PlanView]:
        if version is not None:
            plan = await services.db.plan(code, version)
        else:
            plan = await published.newest(db_session, code)
        if plan is None:
            raise NotFound(f"no plan {code}" + (f" version {version}" if version else ""))
        chosen = caller_locale(request, locale)
        view = PlanView.of(plan, chosen, await published.terms(db_session, plan))
        return Response(view, headers={"content-language": chosen})
