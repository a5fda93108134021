"""`coverline stripe webhook-endpoint` against a Stripe-shaped fixture server: the webhook
endpoint objects are shaped as in Stripe's API reference (localstripe has no such API)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from billing.stripe_gateway import API_VERSION
from billing.webhooks.service import HANDLERS
from tests.live import ROOT


class StripeFixture:
    """GET/POST /v1/webhook_endpoints[/id], as Stripe answers them."""

    def __init__(self) -> None:
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        fixture = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def answer(self, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("request-id", "req_fixture")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                fixture.requests.append(("GET", self.path, {}))
                public = [{k: v for k, v in e.items() if k != "secret"} for e in fixture.endpoints.values()]
                self.answer(
                    {"object": "list", "url": "/v1/webhook_endpoints", "has_more": False, "data": public}
                )

            def do_POST(self) -> None:
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["content-length"])).decode())
                fixture.requests.append(("POST", self.path, form))
                # The SDK sends a list as enabled_events[0]=…&enabled_events[1]=…
                indexed = {k: v for k, v in form.items() if k.startswith("enabled_events[")}
                events = [indexed[k][0] for k in sorted(indexed, key=lambda k: int(k[15:-1]))]
                if self.path == "/v1/webhook_endpoints":
                    endpoint = {
                        "id": f"we_{len(fixture.endpoints) + 1:04d}",
                        "object": "webhook_endpoint",
                        "api_version": form["api_version"][0],
                        "enabled_events": events,
                        "livemode": False,
                        "status": "enabled",
                        "url": form["url"][0],
                        "secret": "whsec_fixture_shown_once",
                    }
                    fixture.endpoints[endpoint["id"]] = endpoint
                    self.answer(endpoint)
                else:
                    endpoint = fixture.endpoints[self.path.rsplit("/", 1)[1]]
                    endpoint["enabled_events"] = events
                    self.answer({k: v for k, v in endpoint.items() if k != "secret"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def stripe_fixture() -> Iterator[StripeFixture]:
    fixture = StripeFixture()
    threading.Thread(target=fixture.server.serve_forever, daemon=True).start()
    yield fixture
    fixture.server.shutdown()


def test_the_webhook_endpoint_is_created_once_with_every_event_then_kept_up_to_date(
    stripe_fixture: StripeFixture, tmp_path: object
) -> None:
    env = {
        **os.environ,
        "STRIPE_API_KEY": "sk_test_fixture",
        "STRIPE_API_BASE": stripe_fixture.url,
        "STRIPE_WEBHOOK_SECRET": "whsec_old",
        "COVERLINE_VAR_DIR": str(tmp_path),
    }

    def run() -> subprocess.CompletedProcess[str]:
        url = "https://api.example.com/v1/stripe/webhooks"
        command = [sys.executable, "-m", "api.cli", "stripe", "webhook-endpoint", "--url", url]
        return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)

    first = run()
    assert first.returncode == 0, first.stderr
    assert "signing secret (shown once): whsec_fixture_shown_once" in first.stdout
    [endpoint] = stripe_fixture.endpoints.values()
    assert sorted(endpoint["enabled_events"]) == sorted(HANDLERS)
    assert endpoint["api_version"] == API_VERSION

    again = run()
    assert again.returncode == 0, again.stderr
    assert "whsec_" not in again.stdout  # Stripe shows it only at creation
    assert "updated we_0001" in again.stdout
    assert len(stripe_fixture.endpoints) == 1
