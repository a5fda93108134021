"""One connection budget per process, split across its pools and checked against the server."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.database import ConnectionBudget, Database, check_server
from api.settings import MIN_CONNECTIONS, MissingSetting, load_settings


@given(total=st.integers(MIN_CONNECTIONS, 10_000))
def test_the_budget_is_split_whole_and_every_pool_gets_two_or_more(total: int) -> None:
    budget = ConnectionBudget(total)
    assert budget.reads + budget.units + budget.sessions == total
    assert min(budget.reads, budget.units, budget.sessions) >= 2


def test_a_budget_too_small_for_the_pools_is_refused(tmp_path: object) -> None:
    with pytest.raises(ValueError, match="at least"):
        ConnectionBudget(MIN_CONNECTIONS - 1)
    with pytest.raises(MissingSetting, match="COVERLINE_DB_CONNECTIONS"):
        load_settings({"COVERLINE_DB_CONNECTIONS": "5", "COVERLINE_VAR_DIR": str(tmp_path)})


async def test_a_budget_past_what_the_server_allows_stops_the_start_naming_the_setting(
    database_url: str,
) -> None:
    db = Database(database_url, budget=ConnectionBudget(100_000))
    with pytest.raises(RuntimeError, match="COVERLINE_DB_CONNECTIONS is 100000"):
        await db.start()
    db = Database(database_url, budget=ConnectionBudget(12))
    await db.start()
    await db.dispose()


async def test_server_workers_that_together_exceed_the_server_are_refused_before_they_start(
    database_url: str,
) -> None:
    """Each server worker opens up to the budget: `serve --workers N` checks N of them together."""
    allowed = await _available(database_url)
    per_worker = allowed // 2 + 1  # one fits, two do not
    assert await check_server(database_url, per_worker, 1)  # and migrated
    with pytest.raises(RuntimeError, match=f"COVERLINE_DB_CONNECTIONS is {per_worker} for each of 2 server"):
        await check_server(database_url, per_worker, 2)


def test_serve_refuses_workers_past_the_servers_connections_naming_the_setting(
    database_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "COVERLINE_VAR_DIR": str(tmp_path),
        "COVERLINE_DB_CONNECTIONS": "5000",
    }
    ended = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve", "--workers", "2", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ended.returncode != 0
    assert "COVERLINE_DB_CONNECTIONS is 5000 for each of 2 server workers (10000 in all)" in ended.stderr


async def _available(url: str) -> int:
    import asyncpg

    from api.database import available_connections

    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        return await available_connections(connection)
    finally:
        await connection.close()
