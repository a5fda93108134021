"""Rate limits that hold across workers, off the check's path.

A limit is a token bucket per API key id (and, for a publishable key, which every shopper on a
merchant's pages shares, per key and client address): `per_minute` tokens refilled evenly, as
many held at most. The bucket lives in PostgreSQL (`rate_buckets`, UNLOGGED) and every worker
leases tokens from it in batches, in the background: a request takes a token from its worker's
local share and never waits on a write while that share holds one. A new bucket starts each
worker with one batch on credit, repaid from its first lease, so the first requests wait on
nothing either; only a request that finds its worker's share empty waits for the lease it
starts (a caller at its limit). A store that cannot be reached lets requests through: a limiter
must not take the API down with it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

import msgspec
import structlog

log = structlog.get_logger("api.rate_limits")
Lease = Callable[[str, float, float, int], Awaitable[int]]  # bucket, capacity, per second, want
LEASE_WAIT = 2.0  # seconds a request with an empty share waits for its lease (a slow store: not a refusal)
MAX_BUCKETS = 50_000  # local shares kept at most (then the idle ones are dropped)


class Verdict(msgspec.Struct, frozen=True):
    allowed: bool
    limit: int  # per minute
    remaining: int  # this worker's share, as far as it knows
    reset: int  # seconds until a token is back


class _Share(msgspec.Struct):
    tokens: float
    owed: float  # taken on credit before the first lease
    waiting: int = 0  # requests waiting for a lease: the next one asks for them too
    used: float = 0.0  # monotonic time last asked
    lease: asyncio.Task[None] | None = None
    not_before: float = 0.0  # no lease before (the store had nothing left)


class RateLimits:
    def __init__(
        self, lease: Lease, *, batch: int = 100, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lease = lease
        self._batch = batch
        self._clock = clock
        self._shares: dict[str, _Share] = {}

    def _batch_for(self, per_minute: int) -> int:
        return max(1, min(self._batch, per_minute // 20))

    async def take(self, bucket: str, per_minute: int) -> Verdict:
        now = self._clock()
        share = self._shares.get(bucket)
        if share is None:
            if len(self._shares) >= MAX_BUCKETS:
                self._forget_idle(now)
            starter = float(self._batch_for(per_minute))
            share = self._shares[bucket] = _Share(tokens=starter, owed=starter)
        share.used = now
        if share.tokens < 1:
            await self._wait_for_tokens(bucket, share, per_minute, now)
        allowed = share.tokens >= 1
        if allowed:
            share.tokens -= 1
        if share.tokens < self._batch_for(per_minute) / 2:
            self._start_lease(bucket, share, per_minute, now, forced=False)
        reset = 0 if allowed and share.tokens >= 1 else math.ceil(60 / per_minute)
        return Verdict(allowed, per_minute, max(int(share.tokens), 0), reset)

    async def _wait_for_tokens(self, bucket: str, share: _Share, per_minute: int, now: float) -> None:
        """Lease until this worker's share holds a token, the store has none, or `LEASE_WAIT`
        has passed."""
        share.waiting += 1
        try:
            deadline = now + LEASE_WAIT
            while share.tokens < 1:
                left = deadline - self._clock()
                lease = self._start_lease(bucket, share, per_minute, self._clock(), forced=True)
                if lease is None or left <= 0:
                    return
                try:
                    await asyncio.wait_for(asyncio.shield(lease), left)
                except TimeoutError:
                    return
                if share.not_before > self._clock():  # the store had nothing left
                    return
        finally:
            share.waiting -= 1

    def _start_lease(
        self, bucket: str, share: _Share, per_minute: int, now: float, *, forced: bool
    ) -> asyncio.Task[None] | None:
        if share.lease is not None:
            return share.lease
        if now < share.not_before and not (forced and share.owed > 0):
            return None
        share.lease = asyncio.get_running_loop().create_task(self._refill(bucket, share, per_minute))
        return share.lease

    async def _refill(self, bucket: str, share: _Share, per_minute: int) -> None:
        owed = share.owed
        want = min(self._batch_for(per_minute) + math.ceil(owed) + share.waiting, per_minute)
        try:
            granted = await self._lease(bucket, float(per_minute), per_minute / 60, want)
        except Exception:  # the store is down: let requests through rather than fail them
            log.warning("rate limit store unavailable: allowing", bucket_kind=bucket.partition(":")[0])
            granted = want
        finally:
            share.lease = None
        share.tokens += granted - owed
        share.owed -= owed
        if granted == 0:  # empty: ask again once a token has come back
            share.not_before = self._clock() + 60 / per_minute

    def _forget_idle(self, now: float) -> None:
        idle = [b for b, s in self._shares.items() if s.lease is None and now - s.used > 60]
        for bucket in idle or list(self._shares)[: len(self._shares) // 2]:
            self._shares.pop(bucket, None)


def headers(verdict: Verdict) -> list[tuple[bytes, bytes]]:
    """`RateLimit-*` (the IETF draft's fields) and, when refused, `Retry-After`."""
    found = [
        (b"ratelimit-limit", str(verdict.limit).encode()),
        (b"ratelimit-remaining", str(verdict.remaining).encode()),
        (b"ratelimit-reset", str(verdict.reset).encode()),
        (b"ratelimit-policy", f"{verdict.limit};w=60".encode()),
    ]
    if not verdict.allowed:
        found.append((b"retry-after", str(max(verdict.reset, 1)).encode()))
    return found
