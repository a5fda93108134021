"""/docs: Swagger UI from a pinned Python package (`swagger-ui-bundle`), served by the app, so the
docs work offline; started by a script file of ours, since Litestar's render plugins write inline
scripts, and under the same Content-Security-Policy as every page."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin


def swagger_ui_directory() -> Path:
    import swagger_ui_bundle  # type: ignore[import-untyped]

    return Path(swagger_ui_bundle.swagger_ui_path)


class DocsPage(OpenAPIRenderPlugin):
    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        from api.pages import asset

        spec = html.escape(self.get_openapi_json_route(request))
        return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Coverline API</title>
<link rel="icon" href="{asset("favicon.svg")}" type="image/svg+xml">
<link rel="stylesheet" href="/vendor/swagger-ui/swagger-ui.css">
<link rel="stylesheet" href="{asset("docs.css")}">
</head>
<body>
<main>
<h1 class="visually-hidden">Coverline API reference</h1>
<div id="swagger-ui" data-spec-url="{spec}"></div>
</main>
<script src="/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="{asset("docs.js")}"></script>
</body>
</html>
""".encode()
