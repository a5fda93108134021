"""Requests that arrive together share one trip to the database.

Two shapes of the same idea, used by the check's path:
- `SingleFlight`: callers asking for one key while its answer is being fetched wait for that one
  fetch (the key cache: when a key's entry runs out, the thousand checks that miss it together
  share one lookup rather than each queueing for a connection).
- `Gathered`: lookups gather into the next read that has not been sent, with at most `in_flight`
  reads out at once (the check's snapshot reads, whatever kinds of lookup they hold), so the
  busier the process, the fuller each read. A lookup only ever joins a read that has not been
  sent: every answer comes from a statement that started after its request arrived, exactly as
  fresh as a read of its own.

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


class _Gathering(Generic[K, R]):
    """The keys of one read not sent yet, and who waits for which of them."""

    def __init__(self) -> None:
        self.keys: dict[K, None] = {}  # in the order first asked
        # Each caller's own keys and future: a caller that goes away cancels only its own.
        self.waiters: list[tuple[list[K], asyncio.Future[list[R]]]] = []


class Gathered(Generic[K, R]):
    """Lookups by key, gathered into shared reads. `read(keys)` answers rows; `key_of(row)` says
    which key a row answers (a key may have several rows, or none)."""

    def __init__(
        self,
        read: Callable[[list[K]], Awaitable[Sequence[R]]],
        key_of: Callable[[R], K],
        *,
        max_keys: int,
        in_flight: int,
    ) -> None:
        self._read = read
        self._key_of = key_of
        self._max_keys = max_keys
        self._open: _Gathering[K, R] | None = None
        self._slots = asyncio.Semaphore(in_flight)
        self._sending: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def fetch(self, keys: list[K]) -> list[R]:
        """The rows for `keys`, in their order (a key asked twice is answered once)."""
        loop = asyncio.get_running_loop()
        gathering = self._open
        if gathering is None or len(gathering.keys) + len(keys) > self._max_keys:
            gathering = self._open = _Gathering()
            sending = loop.create_task(self._send(gathering))  # after this tick
            self._sending.add(sending)
            sending.add_done_callback(functools.partial(self._sent, gathering))
        gathering.keys.update(dict.fromkeys(keys))
        rows: asyncio.Future[list[R]] = loop.create_future()
        gathering.waiters.append((keys, rows))
        return await rows

    def _sent(self, gathering: _Gathering[K, R], sending: asyncio.Task[None]) -> None:
        self._sending.discard(sending)
        if sending.cancelled():  # the process is stopping, perhaps before the read even began
            if self._open is gathering:
                self._open = None
            for _, waiter in gathering.waiters:
                waiter.cancel()

    async def _send(self, gathering: _Gathering[K, R]) -> None:
        try:
            async with self._slots:
                if self._open is gathering:
                    self._open = None  # closed: later lookups start the next read
                rows = await self._read(list(gathering.keys))
        except Exception as exc:
            for _, waiter in gathering.waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        by_key: dict[K, list[R]] = {}
        for row in rows:
            by_key.setdefault(self._key_of(row), []).append(row)
        for keys, waiter in gathering.waiters:
            if not waiter.done():
                waiter.set_result([row for key in dict.fromkeys(keys) for row in by_key.get(key, [])])
