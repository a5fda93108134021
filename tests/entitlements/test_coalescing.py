"""The one request-coalescing module: lookups that arrive together share a fetch, and each caller
still gets exactly its own answer."""

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entitlements.coalescing import Gathered, SingleFlight

KEYS = st.lists(
    st.tuples(st.sampled_from(["serial", "customer_id"]), st.sampled_from("ABCDEFGH")), min_size=1, max_size=5
)
Key = tuple[str, str]


def rows_of(key: Key) -> list[tuple[Key, str]]:
    """Two rows for a vowel, none for H (a key can have several rows, or none)."""
    kind, value = key
    return [] if value == "H" else [(key, f"{kind}:{value}:{n}") for n in range(2 if value in "AE" else 1)]


@given(st.lists(KEYS, min_size=1, max_size=30), st.integers(1, 3), st.integers(1, 12))
def test_gathered_lookups_each_get_their_own_rows_in_order(
    asked: list[list[Key]], in_flight: int, max_keys: int
) -> None:
    reads: list[list[Key]] = []

    async def read(keys: list[Key]) -> list[tuple[Key, str]]:
        reads.append(keys)
        await asyncio.sleep(0)
        return [row for key in keys for row in rows_of(key)]

    async def run() -> list[list[tuple[Key, str]]]:
        gathered = Gathered(read, lambda row: row[0], max_keys=max_keys, in_flight=in_flight)
        return await asyncio.gather(*(gathered.fetch(keys) for keys in asked))

    answers = asyncio.run(run())
    for keys, rows in zip(asked, answers, strict=True):
        assert rows == [row for key in dict.fromkeys(keys) for row in rows_of(key)]
    assert len(reads) <= len(asked)  # never more reads than lookups; together, far fewer
    assert all(len(keys) <= max(max_keys, 5) for keys in reads)
    assert all(len(set(keys)) == len(keys) for keys in reads)  # a key asked twice is read once


async def test_a_lookup_that_arrives_after_a_read_was_sent_waits_for_the_next() -> None:
    sent: list[list[str]] = []
    gate = asyncio.Event()

    async def read(keys: list[str]) -> list[tuple[str, str]]:
        sent.append(keys)
        await gate.wait()
        return [(v, v) for v in keys]

    gathered = Gathered(read, lambda row: row[0], max_keys=100, in_flight=2)
    first = asyncio.create_task(gathered.fetch(["A"]))
    await asyncio.sleep(0.01)  # the first read is out
    second = asyncio.create_task(gathered.fetch(["B"]))
    await asyncio.sleep(0.01)
    gate.set()
    assert (await first, await second) == ([("A", "A")], [("B", "B")])
    assert sent == [["A"], ["B"]]  # B never joined a read already sent: its answer is as fresh


async def test_a_failed_read_fails_its_callers_and_the_next_read_starts_afresh() -> None:
    failures = [RuntimeError("the database went away")]

    async def read(keys: list[str]) -> list[tuple[str, str]]:
        if failures:
            raise failures.pop()
        return [(v, v) for v in keys]

    gathered = Gathered(read, lambda row: row[0], max_keys=100, in_flight=1)
    results = await asyncio.gather(gathered.fetch(["A"]), gathered.fetch(["B"]), return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    assert await gathered.fetch(["C"]) == [("C", "C")]


async def test_single_flight_shares_one_fetch_and_a_caller_leaving_does_not_cancel_it() -> None:
    fetched: list[str] = []
    gate = asyncio.Event()

    async def fetch() -> str:
        fetched.append("key")
        await gate.wait()
        return "principal"

    flight: SingleFlight[str, str] = SingleFlight()
    leaving = asyncio.create_task(flight.run("key", fetch))
    staying = [asyncio.create_task(flight.run("key", fetch)) for _ in range(5)]
    await asyncio.sleep(0.01)
    leaving.cancel()
    gate.set()
    assert await asyncio.gather(*staying) == ["principal"] * 5
    assert fetched == ["key"]
    with pytest.raises(asyncio.CancelledError):
        await leaving
    gate.clear()
    again = asyncio.create_task(flight.run("key", fetch))  # the next miss fetches anew
    await asyncio.sleep(0.01)
    gate.set()
    assert await again == "principal"
    assert fetched == ["key", "key"]
