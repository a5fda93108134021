"""Requests that arrive together share one trip to the database.

Two shapes of the same idea, used by the check's path:
- `SingleFlight`: callers asking for one key while its answer is being fetched wait for that one
  fetch (the key cache: when a key's entry runs out, the thousand checks that miss it together
  share one lookup rather than each queueing for a connection).
- `Gathered`: lookups of one kind gather into the next read that has not been sent, with at most
  `in_flight` reads out at once (the check's snapshot reads), so the busier the process, the
  fuller each read. A lookup only ever joins a read that has not been sent: every answer comes
  from a statement that started after its request arrived, exactly as fresh as a read of its own.

Either way, a caller that goes away cancels its own wait, never the fetch the others wait for.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
R = TypeVar("R")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._pending: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        """`fetch()`'s answer, fetched once for all who ask for `key` while it is out."""
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = asyncio.ensure_future(self._fetch(key, fetch))
        # Shielded: a caller that goes away must not cancel the fetch the others wait for.
        return await asyncio.shield(pending)

    async def _fetch(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        try:
            return await fetch()
        finally:
            del self._pending[key]


class _Gathering(Generic[R]):
    """The values of one read not sent yet, and who waits for which of them."""

    def __init__(self) -> None:
        self.values: set[str] = set()
        # Each caller's own values and future: a caller that goes away cancels only its own.
        self.waiters: list[tuple[list[str], asyncio.Future[list[R]]]] = []


class Gathered(Generic[R]):
    """Lookups by value, gathered per kind into shared reads. `read(kind, values)` answers rows;
    `value_of(row)` says which value a row answers (a value may have several rows, or none)."""

    def __init__(
        self,
        read: Callable[[str, list[str]], Awaitable[Sequence[R]]],
        value_of: Callable[[R], str],
        *,
        max_values: int,
        in_flight: int,
    ) -> None:
        self._read = read
        self._value_of = value_of
        self._max_values = max_values
        self._open: dict[str, _Gathering[R]] = {}
        self._slots = asyncio.Semaphore(in_flight)
        self._sending: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def fetch(self, kind: str, values: list[str]) -> list[R]:
        """The rows for `values`, in their order (a value asked twice is answered once)."""
        loop = asyncio.get_running_loop()
        gathering = self._open.get(kind)
        if gathering is None or len(gathering.values) + len(values) > self._max_values:
            gathering = _Gathering()
            self._open[kind] = gathering
            sending = loop.create_task(self._send(kind, gathering))  # after this tick
            self._sending.add(sending)
            sending.add_done_callback(functools.partial(self._sent, kind, gathering))
        gathering.values.update(values)
        rows: asyncio.Future[list[R]] = loop.create_future()
        gathering.waiters.append((values, rows))
        return await rows

    def _sent(self, kind: str, gathering: _Gathering[R], sending: asyncio.Task[None]) -> None:
        self._sending.discard(sending)
        if sending.cancelled():  # the process is stopping, perhaps before the read even began
            if self._open.get(kind) is gathering:
                del self._open[kind]
            for _, waiter in gathering.waiters:
                waiter.cancel()

    async def _send(self, kind: str, gathering: _Gathering[R]) -> None:
        try:
            async with self._slots:
                if self._open.get(kind) is gathering:
                    del self._open[kind]  # closed: later lookups start the next read
                rows = await self._read(kind, sorted(gathering.values))
        except Exception as exc:
            for _, waiter in gathering.waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        by_value: dict[str, list[R]] = {}
        for row in rows:
            by_value.setdefault(self._value_of(row), []).append(row)
        for values, waiter in gathering.waiters:
            if not waiter.done():
                waiter.set_result([row for value in dict.fromkeys(values) for row in by_value.get(value, [])])
