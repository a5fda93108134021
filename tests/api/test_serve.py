"""`coverline serve` with two worker processes on PostgreSQL: both start, checks are answered
through the shared reads (which keep their connections between reads), and SIGTERM stops the
server, each worker closing its pools, within the helper's 10 s."""

import asyncio

import httpx
import pytest

from api.auth import KeyKind, Scope, issue_key
from entitlements.store.base import create_engine, session_factory
from tests.live import coverline_server


async def _support_key(url: str) -> str:
    engine = create_engine(url)
    async with session_factory(engine)() as session, session.begin():
        issued = await issue_key(
            session, kind=KeyKind.SECRET, name="desk", scopes=[Scope.SUPPORT], live=False
        )
    await engine.dispose()
    return issued.key


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_workers_answer_checks_and_stop_cleanly(database_url: str) -> None:
    key = asyncio.run(_support_key(database_url))
    with coverline_server({"DATABASE_URL": database_url}, workers=2) as base:
        for i in range(40):  # a new connection each time, so both workers take some
            answer = httpx.get(
                f"{base}/v1/entitlements",
                params={"serial": f"NOT-SOLD-{i}"},
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            assert (answer.json()["covered"], answer.json()["reason"]) == (False, "no_contract")
