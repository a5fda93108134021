"""The one clock: now, in UTC (tests and use cases take instants from it, never the local time)."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
