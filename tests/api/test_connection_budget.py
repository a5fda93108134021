"""One connection budget per process, split across its pools and checked against the server."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.database import ConnectionBudget, Database
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
