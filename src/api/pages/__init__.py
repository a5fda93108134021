"""The pages people use: the support console (/console), the customer portal (/portal), the
checkout widget (/widget/v1/coverline.js) with a demo merchant (/demo/checkout), and the API docs
(/docs). Server-rendered with Jinja (autoescaped), a little plain JavaScript in files of our own,
no inline script or style anywhere; none of it is part of the OpenAPI document."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

HERE = Path(__file__).parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"
YEAR = 365 * 24 * 3600


@cache
def asset_version(name: str) -> str:
    """The first characters of a static file's SHA-256: its URL changes when it does, so it may be
    cached for a year."""
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def asset(name: str) -> str:
    return f"/static/{name}?v={asset_version(name)}"


def static_routers() -> list[Router]:
    from api.pages.docs import swagger_ui_directory

    forever = CacheControlHeader(max_age=YEAR, public=True)
    return [
        create_static_files_router("/static", [STATIC], name="static", cache_control=forever),
        # The package is pinned in the lock; its files change only with its version.
        create_static_files_router(
            "/vendor/swagger-ui", [swagger_ui_directory()], name="swagger-ui", cache_control=forever
        ),
    ]


def page_handlers() -> list[Any]:
    from api.pages.console import ConsoleController
    from api.pages.portal import PortalController
    from api.pages.rating import RatingController
    from api.pages.shop import DemoCheckoutController, SandboxPageController, widget_script

    return [
        *static_routers(),
        ConsoleController,
        PortalController,
        RatingController,
        DemoCheckoutController,
        SandboxPageController,
        widget_script,
    ]
