"""`GET /v1/entitlements` is answered ahead of Litestar (`DirectCheck`) when it can be; whatever
it answers must be exactly what the controller answers, and whatever it cannot answer exactly
(every error among it) must reach the controller."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from api.app import CoverlineApp, create_app
from api.routes.entitlements import DirectCheck
from tests.api.shop import Shop
from tests.conftest import Keys, make_settings, serving

IMEI = "490154203237518"


Case = tuple[str, str | None, str | None, bool]


def _cases(serial: str, contract_id: str, customer_id: str) -> list[Case]:
    """(raw query, key, Accept-Language, whether it may be answered directly): plain queries from
    keys with the scope, and everything around them."""
    plain = [
        f"serial={serial}",
        f"serial={serial.lower()}",
        f"serial={serial[:4]}-{serial[4:]}",
        f"serial={serial}&incident=screen&locale=ar",
        f"serial={serial}&incident=theft_loss&locale=vi",
        f"serial={serial}&at=2020-01-01T00:00:00Z",
        f"serial={serial}&at=2099-01-01T00:00:00.123456-05:00&incident=screen",
        f"serial={serial}&opened_at=2026-11-20T15:00:00Z&locale=sv",
        f"imei={IMEI}",
        "imei=49-015420-323751-8&locale=hi",
        f"contract_id={contract_id}&locale=fil",
        f"customer_id={customer_id}&incident=mechanical_breakdown",
        "order_ref=ORD-77&locale=sv",
        "serial=NEVER-SOLD-1&locale=xx",
    ]
    odd = [
        "",
        "serial=",
        "serial",
        f"&serial={serial}",
        f"serial={serial}&",
        f"serial={serial}&serial={serial}",
        f"serial={serial}&imei={IMEI}",
        "serial=" + "X" * 65,
        "imei=123",
        "imei=490154203237519",  # wrong check digit
        f"serial={serial}&incident=nope",
        f"serial={serial}&locale=" + "x" * 36,
        f"serial={serial}&at=yesterday",
        f"serial={serial}&opened_at=2026-11-20T15:00:00",
        f"serial={serial}&opened_at=0001-01-01T00:00:00Z",
        f"serial={serial}&at=2026-11-23T10:00:00",
        f"serial={serial}&at=2026-13-45T10:00:00Z",
        f"serial={serial}&at=2026-11-23T10:00:00+02:00",
        f"serial={serial}&at=2026-11-23T10:00:00%2B02:00",
        f"serial={serial.lower()}%20",
        "serial=%D8%A7%D9%84%D9%87%D8%A7%D8%AA%D9%81",
        "serial=ab+12",
        "serail=X",
    ]
    cases: list[Case] = [(query, "support", None, True) for query in plain]
    cases += [(query, "support", None, False) for query in odd]
    for query in plain[:4]:
        cases += [(query, "admin", "ar, en;q=0.5", True), (query, "support", "fil-PH;q=0.9, sv;q=0.8", True)]
        cases += [(query, who, None, False) for who in ("checkout", "finance", "publishable", None, "bogus")]
    return cases


async def _ask(
    client: httpx.AsyncClient, keys: Keys, query: str, who: str | None, language: str | None
) -> tuple[int, list[tuple[str, str]], Any]:
    headers = {"X-Request-Id": "req_same"}
    if who == "bogus":
        headers["Authorization"] = "Bearer sk_test_" + "0" * 40
    elif who is not None:
        headers.update(keys.auth(who))
    if language is not None:
        headers["Accept-Language"] = language
    response = await client.get("/v1/entitlements?" + query if query else "/v1/entitlements", headers=headers)
    body = json.loads(response.content)
    if not re.search(r"(^|&)at=", query) and isinstance(body, dict):
        body.pop("at", None)  # "now" differs between two requests
    # Every header (the order of different names means nothing); only the time the answer was
    # sent may differ.
    kept = sorted((name, value) for name, value in response.headers.multi_items() if name != "date")
    return response.status_code, kept, body


async def test_the_direct_answer_is_the_controllers_answer(
    shop: Shop, client: httpx.AsyncClient, app: CoverlineApp, keys: Keys
) -> None:
    customer = await shop.customer(phone="+46 70 123 45 67", email=None)
    product = await shop.product(customer["id"], imei=IMEI, order_ref="ORD-77")
    contract = await shop.open_contract(customer, product)
    await shop.lifecycle(contract["id"], "payment", "pay-1")
    await shop.claim(contract_id=contract["id"])

    shortcuts = app.edge.shortcuts
    direct = shortcuts[("GET", "/v1/entitlements")]
    assert isinstance(direct, DirectCheck)
    answered: list[str] = []

    async def watched(scope: dict[str, Any], send: Any) -> bool:
        done = await direct(scope, send)
        if done:
            answered.append(scope["query_string"].decode())
        return done

    cases = _cases(product["serial"], contract["id"], customer["id"])
    for query, who, language, _ in cases:
        app.edge.shortcuts = {("GET", "/v1/entitlements"): watched}
        fast = await _ask(client, keys, query, who, language)
        app.edge.shortcuts = {}
        controller = await _ask(client, keys, query, who, language)
        assert fast == controller, (query, who, language)
    app.edge.shortcuts = shortcuts

    # The comparison is not vacuous: every plain query from a key with the scope was answered
    # directly, nothing else was, and the controller's answers span success and every refusal.
    assert sorted(answered) == sorted(query for query, _, _, plain in cases if plain)
    statuses = {(await _ask(client, keys, query, who, language))[0] for query, who, language, _ in cases}
    assert {200, 400, 401, 403, 422} <= statuses


class Cut:
    """A TCP forwarder between the app and PostgreSQL that can be cut: every connection through
    it dropped and new ones refused, as when the database goes away. It reaches the database as
    `database_url` does: over TCP (the server at 127.0.0.1:5432), or by the Unix socket in the
    directory its `host` parameter names (the embedded server)."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        socket_dir = url.query.get("host")
        self.socket = f"{socket_dir}/.s.PGSQL.{url.port or 5432}" if isinstance(socket_dir, str) else None
        self.target = (url.host or "127.0.0.1", url.port or 5432)
        self.url = url.difference_update_query(["host"]).set(host="127.0.0.1")
        self.links: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        """The database's URL through the forwarder."""
        self.server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        port = int(self.server.sockets[0].getsockname()[1])
        return self.url.set(port=port).render_as_string(hide_password=False)

    async def _link(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        if self.socket is not None:
            server_in, server_out = await asyncio.open_unix_connection(self.socket)
        else:
            server_in, server_out = await asyncio.open_connection(*self.target)
        self.links |= {client_out, server_out}

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        await asyncio.gather(pump(client_in, server_out), pump(server_in, client_out))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.links:
            writer.transport.abort()


async def test_with_the_database_gone_the_direct_answer_is_still_the_controllers(
    shop: Shop, database_url: str, keys: Keys
) -> None:
    """Cut from PostgreSQL (its connections dropped, new ones refused), the app answers every
    query, plain or not, as the controller does, headers and problem alike, and never a 500."""
    contract = await shop.sell()
    cut = Cut(database_url)
    app = create_app(make_settings(await cut.start()))
    async with serving(app) as client:
        direct = app.edge.shortcuts[("GET", "/v1/entitlements")]
        queries = [f"serial={contract['serial']}", f"contract_id={contract['id']}&locale=sv", "serial=%20x"]
        up = await _ask(client, keys, queries[0], "support", None)
        assert up[0] == 200
        await cut.cut()
        for query in queries:
            for who in ("support", "finance"):
                app.edge.shortcuts = {("GET", "/v1/entitlements"): direct}
                fast = await _ask(client, keys, query, who, None)
                app.edge.shortcuts = {}
                controller = await _ask(client, keys, query, who, None)
                assert fast == controller, (query, who)
                assert fast[0] in (403, 503), fast  # a key remembered may still be refused
                if fast[0] == 503:
                    assert ("retry-after", "5") in fast[1]
                    assert fast[2]["type"].endswith(":database-unavailable"), fast[2]
        app.edge.shortcuts = {("GET", "/v1/entitlements"): direct}
