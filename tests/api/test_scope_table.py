"""The README's table of what each key may do is the app's own access rules, rendered: a change
to a guard that the README does not show fails here (the message carries the table to paste)."""

from __future__ import annotations

import re

from litestar.routes import HTTPRoute

from api.app import create_app
from api.keys import Scope
from tests.conftest import ROOT, make_settings

README = ROOT / "README.md"
_TABLE = re.compile(r"<!-- scopes:begin -->\n(.*?)<!-- scopes:end -->", re.S)
COLUMNS = ["publishable", *(scope.value for scope in Scope)]


def scope_table() -> str:
    app = create_app(make_settings("postgresql://unused@127.0.0.1/unused"))
    rows = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path_format.startswith("/v1/"):
            continue
        for handler in route.route_handlers:
            opt: dict[str, object] = {}
            for layer in handler.ownership_layers:
                opt.update(getattr(layer, "opt", None) or {})
            access = {str(getattr(a, "value", a)) for a in opt.get("access") or ()}  # type: ignore[attr-defined]
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                marks = ["✓" if column in access else "" for column in COLUMNS]
                if not access:
                    marks = ["signature" if route.path_format.endswith("webhooks") else "—"] * len(COLUMNS)
                rows.append(f"| `{method} {route.path_format}` | " + " | ".join(marks) + " |")
    header = "| operation | " + " | ".join(f"`{c}`" for c in COLUMNS) + " |\n"
    rule = "| --- |" + " :---: |" * len(COLUMNS) + "\n"
    return header + rule + "\n".join(sorted(rows)) + "\n"


def test_the_readme_shows_what_each_key_may_do() -> None:
    found = _TABLE.search(README.read_text())
    assert found is not None, "README.md lacks the <!-- scopes:begin --> … <!-- scopes:end --> table"
    expected = scope_table()
    assert found.group(1) == expected, "the README's scope table is stale; it should read:\n" + expected
