"""Handlers get the app's services by dependency injection, typed (`api.dependencies`), never the
untyped `State`; the providers read the app's state on each request, so a service replaced on a
built app is the one handlers get."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.routes import HTTPRoute

from api.app import create_app
from api.dependencies import provide_gateway, provide_settings, service_dependencies
from tests.conftest import make_settings


def test_no_handler_takes_the_state() -> None:
    app = create_app(make_settings("postgresql://unused@127.0.0.1/unused"))
    takers = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for name, parameter in handler.parsed_fn_signature.parameters.items():
                if name == "state" or parameter.annotation is State:
                    takers.append(f"{route.path_format} {handler.handler_name}({name})")
    assert takers == []


def test_every_service_is_provided_without_a_thread() -> None:
    provided = service_dependencies()
    assert set(provided) == {"settings", "db", "gateway", "evidence_store", "replay_seal"}
    assert not any(provide.sync_to_thread for provide in provided.values())


def test_a_service_replaced_after_the_app_is_built_is_the_one_provided() -> None:
    settings = make_settings("postgresql://unused@127.0.0.1/unused")
    state = State({"settings": settings, "gateway": "the first"})
    assert provide_gateway(state) == "the first"
    state.gateway = "its replacement"
    assert provide_gateway(state) == "its replacement"
    assert provide_settings(state) is settings
