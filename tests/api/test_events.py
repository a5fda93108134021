"""Outbound events: written with the change they report, delivered by the worker to the endpoints
that want them, signed to the Standard Webhooks specification (verified here with the
`standardwebhooks` package, as a consumer would), retried until they arrive."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from pgqueuer.domain.types import QueueExecutionMode
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.app import CoverlineApp, create_app
from api.deliveries import PublicAddresses, close_sessions
from api.endpoint_urls import UnsafeUrl, check_url
from api.worker import build_worker
from billing.sandbox import SandboxGateway
from tests.api.shop import Shop, publish_test_plans
from tests.conftest import WEBHOOK_SECRETS, Keys, make_settings, serving

FAST = {
    "job_retry_seconds": 0.05,
    "job_retry_max_seconds": 0.2,
    "job_poll_seconds": 0.2,
    "job_lease_seconds": 2.0,
    "webhook_retry_seconds": 0.02,
    "webhook_retry_max_seconds": 0.1,
}


class Endpoint:
    """A consumer's HTTP server on a port of its own; `answer` decides each request's status
    (None: no answer at all)."""

    def __init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                status = outer.answer({k.lower(): v for k, v in self.headers.items()}, body)
                if status is None:
                    return
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, headers: dict[str, str], body: bytes) -> int | None:
        raise NotImplementedError


class Receiver(Endpoint):
    """Answers `status` (or 500 for a share of requests), and records the rest."""

    def __init__(self, *, fail_share: float = 0.0, status: int = 200) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.failed = 0
        self.rng = random.Random(20261127)
        self.fail_share, self.status = fail_share, status
        super().__init__()

    def answer(self, headers: dict[str, str], body: bytes) -> int | None:
        if self.rng.random() < self.fail_share:
            self.failed += 1
            return 500
        self.received.append((headers, body))
        return self.status

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[CoverlineApp]:
    yield create_app(make_settings(database_url, **FAST))


@pytest.fixture(autouse=True)
def no_endpoints_left(database_url: str) -> Iterator[None]:
    """Endpoints outlive a test in the shared database: every later sale would queue deliveries."""
    yield

    async def clean() -> None:
        connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            await connection.execute("DELETE FROM webhook_endpoints; DELETE FROM pgqueuer")
        finally:
            await connection.close()

    import asyncio

    asyncio.run(clean())


async def drain(app: CoverlineApp) -> None:
    settings = app.state.settings
    connection = await asyncpg.connect(
        str(app.state.db.url).replace("postgresql+asyncpg://", "postgresql://")
    )
    try:
        worker = build_worker(settings, connection, app.state.db, SandboxGateway(WEBHOOK_SECRETS[0]))
        await worker.qm.run(
            dequeue_timeout=dt.timedelta(seconds=settings.job_poll_seconds),
            heartbeat_timeout=dt.timedelta(seconds=settings.job_lease_seconds),
            mode=QueueExecutionMode.drain,
        )
    finally:
        await close_sessions()
        await connection.close()


async def endpoint(shop: Shop, url: str, **fields: Any) -> dict[str, Any]:
    created: dict[str, Any] = await shop.call(
        "POST", "/v1/webhook-endpoints", "admin", json={"url": url, **fields}
    )
    assert created["secret"].startswith("whsec_")
    return created


async def test_a_sale_is_told_to_the_endpoint_signed_in_order_and_once_per_event(
    client: httpx.AsyncClient, app: CoverlineApp, keys: Keys
) -> None:
    await publish_test_plans(app)
    shop = Shop(client, keys)
    receiver = Receiver(fail_share=0.3)  # a consumer that fails three requests in ten
    hook = await endpoint(shop, receiver.url)
    sold = await shop.checkout("test-monthly")
    await shop.call("POST", "/v1/sandbox/clock/advance", "admin", json={"days": 31})  # a renewal
    await drain(app)

    verifier = Webhook(hook["secret"])
    events = [verifier.verify(body, headers) for headers, body in receiver.received]
    assert receiver.failed > 0  # they were retried, and arrived
    types = [e["type"] for e in events]
    assert {"contract.created", "contract.activated", "contract.renewed", "coverage.changed"} <= set(types)
    ids = [headers["webhook-id"] for headers, _ in receiver.received]
    assert len(ids) == len(set(ids))  # one request per event (at least once: none lost here)
    product = sold["contract"]["product_id"]
    sequences = sorted(e["sequence"] for e in events if e["data"].get("product_id") == product)
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))  # none missing
    # Retries reorder arrivals: the sequence number tells the latest.
    latest = max((e for e in events if e["type"] == "coverage.changed"), key=lambda e: e["sequence"])
    assert latest["data"]["covered"] is True
    assert latest["data"]["contracts"][0]["contract_id"] == sold["contract"]["id"]

    log = await shop.call("GET", f"/v1/webhook-endpoints/{hook['id']}/deliveries", "admin")
    assert {d["status"] for d in log["data"]} == {"delivered", "failed"}
    pulled = await shop.call("GET", "/v1/events", "support", params={"product_id": product})
    assert {e["id"] for e in pulled["data"]} == set(ids) & {e["id"] for e in pulled["data"]}
    assert [e["sequence"] for e in pulled["data"]] == sorted(
        (e["sequence"] for e in pulled["data"]), reverse=True
    )


async def test_a_rotated_secret_signs_beside_the_old_one_and_410_disables(
    client: httpx.AsyncClient, app: CoverlineApp, keys: Keys
) -> None:
    await publish_test_plans(app)
    shop = Shop(client, keys)
    receiver = Receiver()
    hook = await endpoint(shop, receiver.url, event_types=["contract.*"], locale="sv")
    rotated = await shop.call("POST", f"/v1/webhook-endpoints/{hook['id']}/rotate-secret", "admin")
    await shop.checkout("test-screen-guard")
    await drain(app)
    assert receiver.received
    for headers, body in receiver.received:
        Webhook(rotated["secret"]).verify(body, headers)
        Webhook(hook["secret"]).verify(body, headers)  # the consumer not yet switched
    assert {json.loads(b)["type"] for _, b in receiver.received} <= {"contract.created", "contract.activated"}

    # coverage.changed carries the product's answer, and its summary in the endpoint's language.
    told = Receiver()
    swedish = await endpoint(shop, told.url, event_types=["coverage.changed"], locale="sv")
    sold = await shop.checkout("test-screen-guard")
    await drain(app)
    latest = max((json.loads(b) for _, b in told.received), key=lambda e: e["sequence"])
    assert latest["data"]["contract_id"] == sold["contract"]["id"]
    assert latest["texts"]["locale"] == "sv"
    assert latest["texts"]["summary"].startswith("Ännu inte täckt") or latest["texts"]["summary"].startswith(
        "Täckt"
    )
    removed = await client.delete(f"/v1/webhook-endpoints/{swedish['id']}", headers=keys.auth("admin"))
    assert removed.status_code == 204

    gone = Receiver(status=410)
    await shop.call("PATCH", f"/v1/webhook-endpoints/{hook['id']}", "admin", json={"url": gone.url})
    await shop.checkout("test-screen-guard")
    await drain(app)
    after = await shop.call("GET", f"/v1/webhook-endpoints/{hook['id']}", "admin")
    assert (after["enabled"], after["disabled_reason"]) == (False, "the endpoint answered 410 Gone")
    sent = len(gone.received)  # the sale's events in flight when it said so
    await shop.checkout("test-screen-guard")
    await drain(app)
    assert len(gone.received) == sent  # nothing more once it said so

    event_id = json.loads(receiver.received[0][1])
    replay = await shop.call("GET", "/v1/events", "admin", params={"type": "contract.created"})
    assert replay["data"]
    queued = await shop.call("POST", f"/v1/events/{replay['data'][0]['id']}/redeliver", "admin")
    assert queued["queued"] == 0  # the only endpoint is disabled
    assert event_id


async def test_endpoints_must_be_public_https_in_production() -> None:
    await check_url("http://127.0.0.1:9/x", allow_loopback=True)  # development and tests
    for url in (
        "http://127.0.0.1:9/x",
        "https://10.0.0.7/x",
        "https://169.254.169.254/latest",
        "https://[::1]/x",
    ):
        with pytest.raises(UnsafeUrl):
            await check_url(url, allow_loopback=False)
    with pytest.raises(UnsafeUrl):
        await check_url("https://192.168.1.20/x", allow_loopback=True)  # private, even in development


async def test_the_connection_itself_refuses_a_name_that_resolves_to_a_private_address() -> None:
    """Where the delivery connects, not only where its URL was checked: a name that turns private
    between the two (DNS rebinding) is refused by the resolver the delivery's session uses."""
    with pytest.raises(UnsafeUrl, match="not a public address"):
        await PublicAddresses(allow_loopback=False).resolve("localhost", 443)
    found = await PublicAddresses(allow_loopback=True).resolve("localhost", 443)
    assert found and all(result["host"] in ("127.0.0.1", "::1") for result in found)


async def test_endpoint_input_is_checked(client: httpx.AsyncClient, keys: Keys) -> None:
    shop = Shop(client, keys)
    for body in (
        {"url": "https://10.1.2.3/hooks"},
        {"url": "http://127.0.0.1:9/hooks", "event_types": ["contract.exploded"]},
        {"url": "http://127.0.0.1:9/hooks", "locale": "xx"},
    ):
        response = await client.post("/v1/webhook-endpoints", json=body, headers=keys.auth("admin"))
        assert response.status_code in (400, 422), response.text
    denied = await client.get("/v1/webhook-endpoints", headers=keys.auth("support"))
    assert denied.status_code == 403
    assert shop


async def test_the_helpdesk_example_keeps_the_latest_coverage(
    client: httpx.AsyncClient, app: CoverlineApp, keys: Keys
) -> None:
    """examples/helpdesk_receiver.py, as the README runs it: it verifies every delivery with the
    standardwebhooks package and prints each product's newer coverage."""
    import asyncio
    import sys

    from tests.live import ROOT, free_port

    await publish_test_plans(app)
    shop = Shop(client, keys)
    port = free_port()
    hook = await endpoint(
        shop, f"http://127.0.0.1:{port}/hooks", event_types=["coverage.changed"], locale="sv"
    )
    example = str(ROOT / "examples" / "helpdesk_receiver.py")
    receiver = await asyncio.create_subprocess_exec(
        sys.executable,
        example,
        "--port",
        str(port),
        "--secret",
        hook["secret"],
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert receiver.stdout is not None
        assert b"listening" in await receiver.stdout.readline()
        sold = await shop.checkout("test-screen-guard")
        await drain(app)
        await asyncio.sleep(0.2)
    finally:
        receiver.terminate()
        out = (await receiver.communicate())[0].decode()
    lines = [line for line in out.splitlines() if line.startswith(sold["contract"]["product_id"])]
    assert lines, out
    assert lines[-1].split(": ", 1)[1].startswith("covered")


class HangingReceiver(Endpoint):
    """Holds the first request without answering (the worker dies holding it); answers the rest."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.bodies: list[tuple[str, int]] = []  # (webhook-id, the status answered)
        super().__init__()

    def answer(self, headers: dict[str, str], body: bytes) -> int | None:
        first = not self.arrived.is_set()
        self.arrived.set()
        if first:
            self.release.wait(timeout=30)
            return None  # the connection closes under the dead worker
        self.bodies.append((headers["webhook-id"], 200))
        return 200


async def test_a_worker_killed_mid_delivery_leaves_the_event_to_another(
    client: httpx.AsyncClient, app: CoverlineApp, keys: Keys, database_url: str, tmp_path: Path
) -> None:
    import asyncio
    import os
    import signal
    import sys

    from tests.conftest import ROOT

    await publish_test_plans(app)
    shop = Shop(client, keys)
    receiver = HangingReceiver()
    hook = await endpoint(shop, receiver.url, event_types=["contract.created"])
    await shop.checkout("test-monthly")
    [created] = (await shop.call("GET", "/v1/events", "admin", params={"type": "contract.created"}))["data"]
    env = os.environ | {
        "DATABASE_URL": database_url,
        "COVERLINE_VAR_DIR": str(tmp_path),  # its letters and development secrets, not the checkout's
        "COVERLINE_JOB_POLL_SECONDS": "0.1",
        "COVERLINE_JOB_LEASE_SECONDS": "1",
        "COVERLINE_WEBHOOK_TIMEOUT_SECONDS": "30",
    }

    async def worker(*args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "api.cli",
            "worker",
            *args,
            env=env,
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    first = await worker()
    try:
        assert await asyncio.to_thread(receiver.arrived.wait, 30), "the first worker never delivered"
        first.send_signal(signal.SIGKILL)  # mid-delivery: the request sent, no answer read
        await first.wait()
    finally:
        receiver.release.set()
    await asyncio.sleep(1.5)  # its lease runs out
    second = await worker("--until-idle")
    assert await asyncio.wait_for(second.wait(), 60) == 0
    assert (created["id"], 200) in receiver.bodies  # delivered again, by the other worker
    log = await shop.call("GET", f"/v1/webhook-endpoints/{hook['id']}/deliveries", "admin")
    assert "delivered" in {d["status"] for d in log["data"]}


class SlowReceiver(Endpoint):
    """Answers each event's first attempt too late for the worker's timeout, and later ones slowly."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.timed_out = 0
        super().__init__()

    def answer(self, headers: dict[str, str], body: bytes) -> int | None:
        first = headers["webhook-id"] not in self.seen
        self.seen.add(headers["webhook-id"])
        if first:
            self.timed_out += 1
        time.sleep(1.0 if first else 0.1)
        return 200


async def test_a_receiver_that_times_out_or_is_slow_still_gets_everything(
    database_url: str, keys: Keys
) -> None:
    slow_app = create_app(make_settings(database_url, webhook_timeout_seconds=0.4, **FAST))
    async with serving(slow_app) as http:
        await publish_test_plans(slow_app)
        shop = Shop(http, keys)
        receiver = SlowReceiver()
        hook = await endpoint(shop, receiver.url)
        await shop.sell()
        await drain(slow_app)
        written = {e["id"] for e in (await shop.call("GET", "/v1/events", "admin"))["data"]}
        log = await shop.call("GET", f"/v1/webhook-endpoints/{hook['id']}/deliveries", "admin")
    assert receiver.timed_out == len(written) > 0  # every first attempt timed out
    delivered = {d["event_id"] for d in log["data"] if d["status"] == "delivered"}
    assert delivered == written


async def test_endpoints_registered_at_once_stay_within_the_cap(
    client: httpx.AsyncClient, app: CoverlineApp, keys: Keys
) -> None:
    shop = Shop(client, keys)
    receiver = Receiver()
    answers = await asyncio.gather(
        *(
            client.post("/v1/webhook-endpoints", json={"url": receiver.url}, headers=keys.auth("admin"))
            for _ in range(30)
        )
    )
    assert sorted({a.status_code for a in answers}) == [201, 409]
    listed = await shop.call("GET", "/v1/webhook-endpoints", "admin")
    assert len(listed["data"]) == 25


async def test_a_secret_rotated_twice_keeps_the_one_receivers_hold_signing(
    client: httpx.AsyncClient, app: CoverlineApp, keys: Keys
) -> None:
    """A double click on rotate: the secret receivers were given first still signs, beside the
    newest; the one in between, never handed to a receiver in time, is dropped."""
    await publish_test_plans(app)
    shop = Shop(client, keys)
    receiver = Receiver()
    hook = await endpoint(shop, receiver.url, event_types=["contract.*"])
    rotations = await asyncio.gather(
        *(
            client.post(f"/v1/webhook-endpoints/{hook['id']}/rotate-secret", headers=keys.auth("admin"))
            for _ in range(3)
        )
    )
    secrets_given = {r.json()["secret"] for r in rotations}
    await shop.checkout("test-screen-guard")
    await drain(app)
    assert receiver.received
    newest = [s for s in secrets_given if _verifies(s, receiver.received)]
    assert len(newest) == 1  # the one the last rotation left
    assert _verifies(hook["secret"], receiver.received)  # the one receivers hold


def _verifies(secret: str, received: list[tuple[dict[str, str], bytes]]) -> bool:
    try:
        for headers, body in received:
            Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True
