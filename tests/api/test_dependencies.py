"""Handlers get the app's services by dependency injection, as one typed `Services`
(`api.dependencies`), never the untyped `State`; the provider reads the app's state on each
request, so a service replaced on a built app is the one handlers get. No handler resolves two
dependencies at once: Litestar resolves a level of several in an anyio task group, which cost
80–110 µs a request."""

from __future__ import annotations

import msgspec
import pytest
from litestar._kwargs import KwargsModel
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from api.app import CoverlineApp, create_app
from api.dependencies import Services, provide_services
from tests.conftest import make_settings

SERVICE_NAMES = {"settings", "db", "gateway", "evidence_store", "replay_seal"}


@pytest.fixture(scope="module")
def app() -> CoverlineApp:
    return create_app(make_settings("postgresql://unused@127.0.0.1/unused"))


def _handlers(app: CoverlineApp) -> list[tuple[str, str, HTTPRouteHandler, KwargsModel]]:
    """(method, path, handler, its kwargs model) for every route the app answers through Litestar."""
    found = []
    for route in app.routes:
        assert isinstance(route, HTTPRoute), route  # no websocket or ASGI route to walk otherwise
        for method, (handler, kwargs_model) in route.route_handler_map.items():
            found.append((method, route.path_format, handler, kwargs_model))
    return found


def test_no_handler_takes_the_state_or_a_service_by_its_own_name(app: CoverlineApp) -> None:
    takers = []
    for method, path, handler, _ in _handlers(app):
        for name, parameter in handler.parsed_fn_signature.parameters.items():
            if name == "state" or parameter.annotation is State or name in SERVICE_NAMES:
                takers.append(f"{method} {path} {handler.handler_name}({name})")
    assert takers == []


def test_no_handler_resolves_two_dependencies_at_once(app: CoverlineApp) -> None:
    """Each batch of Litestar's (`KwargsModel.dependency_batches`, the kwargs model a route resolves
    a request with) holds one dependency: awaited directly, never in a task group."""
    crowded = []
    resolved = set()
    for method, path, _, kwargs_model in _handlers(app):
        batches = [
            sorted(dependency.key for dependency in batch) for batch in kwargs_model.dependency_batches
        ]
        if any(len(batch) > 1 for batch in batches):
            crowded.append(f"{method} {path}: {batches}")
        resolved.add(tuple(key for batch in batches for key in batch))
    assert crowded == []
    # what the routes resolve, in order: nothing, the services, or the services then the session
    assert resolved == {(), ("services",), ("services", "db_session")}


def test_the_services_are_one_dependency_provided_without_a_thread(app: CoverlineApp) -> None:
    assert set(app.dependencies) == {"services", "db_session"}
    assert app.dependencies["services"].dependency is provide_services
    assert not app.dependencies["services"].sync_to_thread
    assert "services" in app.dependencies["db_session"].signature_model._fields


def test_a_service_replaced_after_the_app_is_built_is_the_one_provided() -> None:
    settings = make_settings("postgresql://unused@127.0.0.1/unused")
    state = State(
        {
            "settings": settings,
            "db": "the db",
            "gateway": "the first",
            "evidence_store": "the store",
            "replay_seal": "the seal",
        }
    )
    assert provide_services(state).gateway == "the first"
    state.gateway = "its replacement"
    services = provide_services(state)
    assert services.gateway == "its replacement"
    assert services.settings is settings
    assert (services.db, services.evidence_store, services.replay_seal) == ("the db", "the store", "the seal")
    with pytest.raises(AttributeError):
        services.gateway = "a third"  # type: ignore[misc]
    assert isinstance(services, Services) and isinstance(services, msgspec.Struct)
