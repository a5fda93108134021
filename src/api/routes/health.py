from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.exceptions import ServiceUnavailableException
from sqlalchemy import text

from api.dependencies import Injected, Services
from api.errors import problem_responses


class Health(msgspec.Struct, frozen=True):
    status: str


class HealthController(Controller):
    tags = ["health"]
    security = [{}]

    @get("/health", summary="Liveness: the process answers", cache_control=None)
    async def health(self) -> Health:
        return Health("ok")

    @get("/ready", summary="Readiness: the database answers", responses=problem_responses(503))
    async def ready(self, services: Injected[Services]) -> Health:
        try:
            async with services.db.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            raise ServiceUnavailableException("the database is not reachable") from exc
        return Health("ready")
