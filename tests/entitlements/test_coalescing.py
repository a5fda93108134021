"""The one request-coalescing module: lookups that arrive together share a fetch, and each caller
still gets exactly its own answer."""

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entitlements.coalescing import Gathered, SingleFlight

VALUES = st.lists(st.sampled_from("ABCDEFGH"), min_size=1, max_size=5)


@given(st.lists(VALUES, min_size=1, max_size=30), st.integers(1, 3), st.integers(1, 12))
def test_gathered_lookups_each_get_their_own_rows_in_order(
    asked: list[list[str]], in_flight: int, max_values: int
) -> None:
    reads: list[list[str]] = []

    async def read(kind: str, values: list[str]) -> list[tuple[str, str]]:
        reads.append(values)
        await asyncio.sleep(0)
        # Two rows for a vowel, none for H (a value can have several rows, or none).
        return [(v, f"{kind}:{v}:{n}") for v in values if v != "H" for n in range(2 if v in "AE" else 1)]

    async def run() -> list[list[tuple[str, str]]]:
        gathered = Gathered(read, lambda row: row[0], max_values=max_values, in_flight=in_flight)
        return await asyncio.gather(*(gathered.fetch("serial", values) for values in asked))

    answers = asyncio.run(run())
    for values, rows in zip(asked, answers, strict=True):
        expected = [
            (v, f"serial:{v}:{n}")
            for v in dict.fromkeys(values)
            if v != "H"
            for n in range(2 if v in "AE" else 1)
        ]
        assert rows == expected
    assert len(reads) <= len(asked)  # never more reads than lookups; together, far fewer
    assert all(len(values) <= max(max_values, 5) for values in reads)


async def test_a_lookup_that_arrives_after_a_read_was_sent_waits_for_the_next() -> None:
    sent: list[list[str]] = []
    gate = asyncio.Event()

    async def read(kind: str, values: list[str]) -> list[tuple[str, str]]:
        sent.append(values)
        await gate.wait()
        return [(v, v) for v in values]

    gathered = Gathered(read, lambda row: row[0], max_values=100, in_flight=2)
    first = asyncio.create_task(gathered.fetch("serial", ["A"]))
    await asyncio.sleep(0.01)  # the first read is out
    second = asyncio.create_task(gathered.fetch("serial", ["B"]))
    await asyncio.sleep(0.01)
    gate.set()
    assert (await first, await second) == ([("A", "A")], [("B", "B")])
    assert sent == [["A"], ["B"]]  # B never joined a read already sent: its answer is as fresh


async def test_a_failed_read_fails_its_callers_and_the_next_read_starts_afresh() -> None:
    failures = [RuntimeError("the database went away")]

    async def read(kind: str, values: list[str]) -> list[tuple[str, str]]:
        if failures:
            raise failures.pop()
        return [(v, v) for v in values]

    gathered = Gathered(read, lambda row: row[0], max_values=100, in_flight=1)
    results = await asyncio.gather(
        gathered.fetch("k", ["A"]), gathered.fetch("k", ["B"]), return_exceptions=True
    )
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    assert await gathered.fetch("k", ["C"]) == [("C", "C")]


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
