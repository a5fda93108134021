"""The corpus (`hostile_corpus.py`: over 1,000 bad inputs made from the OpenAPI document) against
the production server on PostgreSQL: every one gets a 4xx problem, none a 5xx, and nothing is
written outside the rate-limit and idempotency tables."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg
import httpx

from api.keys import Scope
from entitlements.store.base import Base
from tests.api.hostile_corpus import corpus
from tests.live import coverline_server, empty_database, seed_database

UNCOUNTED = {"rate_buckets", "idempotent_requests"}


async def _rows(url: str) -> dict[str, int]:
    tables = [*sorted({t.name for t in Base.metadata.sorted_tables} - UNCOUNTED), "pgqueuer"]
    connection = await asyncpg.connect(url)
    try:
        counts = await connection.fetchrow(
            "SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}") AS "{t}"' for t in tables)
        )
    finally:
        await connection.close()
    return dict(counts)


def test_every_bad_input_gets_a_4xx_problem_and_writes_nothing(database_url: str) -> None:
    cases = corpus()
    assert len(cases) >= 300
    key = seed_database(database_url, "corpus", [Scope.ADMIN, Scope.SUPPORT, Scope.CHECKOUT, Scope.FINANCE])
    before = asyncio.run(_rows(database_url))
    wrong: list[str] = []
    statuses: Counter[int] = Counter()
    with (
        coverline_server({"DATABASE_URL": database_url}) as base,
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        for case in cases:
            headers = {name: value.encode() for name, value in case.headers.items()}
            if case.key:
                headers.setdefault("Authorization", f"Bearer {key}".encode())
            answer = http.request(case.method, case.path, headers=headers, content=case.body)
            statuses[answer.status_code] += 1
            problem = answer.headers.get("content-type", "").startswith("application/problem+json")
            if not (400 <= answer.status_code < 500 and problem):
                wrong.append(
                    f"{case.name}: {answer.status_code} {answer.headers.get('content-type')} {answer.text[:120]}"
                )
    after = asyncio.run(_rows(database_url))
    empty_database(database_url)
    assert wrong == [], "\n".join(wrong[:40])
    assert after == before
    assert len(statuses) >= 6  # 400, 401, 403, 404, 413/415, 422: the cases reach past the edge
