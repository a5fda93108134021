"""Real processes for the tests that need them: the production server (`coverline serve`) and localstripe."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from api.keys import KeyKind, Scope, issue_key
from entitlements.catalog import Plan
from entitlements.store.base import create_engine, session_factory
from entitlements.store.plans import PlanRepository
from tests.conftest import ROOT, empty_tables

BIN = Path(sys.executable).parent


def coverline(*args: str, env: dict[str, str]) -> str:
    """`coverline ARGS` in a process of its own, with this environment; its output, once it
    exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def modules_loaded_by(*modules: str) -> set[str]:
    """Every module a fresh interpreter holds once it has imported these."""
    loaded = subprocess.run(
        [sys.executable, "-c", f"import sys, {', '.join(modules)}; print(*sys.modules, sep='\\n')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(loaded.split())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortTaken(Exception):
    """The port chosen was bound by another process between `free_port` and the server's bind."""


@contextmanager
def running(
    command: Sequence[str], ready_url: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """The command, started and answering at `ready_url` (within 60 s, for a loaded machine),
    stopped at the end (SIGTERM). Its stderr goes to a file, so a command that does not start
    fails with the last of what it said."""
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            list(command),
            env={**os.environ, **(env or {})},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(ready_url, timeout=1)
                    break
                except httpx.TransportError:
                    exited = process.poll() is not None
                    if exited or time.monotonic() > deadline:
                        stderr.seek(0)
                        said = stderr.read().decode(errors="replace")[-3000:]
                        if exited and "address already in use" in said.lower():
                            raise PortTaken(said) from None
                        why = f"exited {process.returncode}" if exited else "no answer in 60 s"
                        pytest.fail(f"{command[0]} did not start ({why}):\n{said}")
                    time.sleep(0.1)
            yield process
        finally:
            process.terminate()
            process.wait(timeout=10)


@contextmanager
def coverline_server(env: dict[str, str], workers: int = 1) -> Iterator[str]:
    """The app under the production server, on a free port (another one if that port is taken
    before the server binds it); its base URL."""
    with coverline_process(env, workers) as (base, _):
        yield base


@contextmanager
def coverline_process(env: dict[str, str], workers: int = 1) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`coverline_server`, and its process (with one worker, the worker itself)."""
    for _ in range(3):
        port = free_port()
        command = [str(BIN / "coverline"), "serve", "--port", str(port), "--workers", str(workers)]
        base = f"http://127.0.0.1:{port}"
        stack = ExitStack()
        # Limits are on by default; a test that wants one sets its own.
        quiet = {
            "COVERLINE_LOG_LEVEL": "WARNING",
            "COVERLINE_RATE_LIMIT_PER_MINUTE": "0",
            "COVERLINE_PUBLISHABLE_RATE_LIMIT_PER_MINUTE": "0",
        }
        try:
            process = stack.enter_context(running(command, base + "/health", {**quiet, **env}))
        except PortTaken:
            continue
        with stack:
            yield base, process
        # The supervisor exits 0 once every worker has shut down (one worker re-raises SIGTERM).
        if workers > 1:
            assert process.returncode == 0, f"the server stopped with {process.returncode}"
        return
    pytest.fail("three free ports were taken before the server could bind them")


def seed_database(url: str, name: str, scopes: Sequence[Scope], plans: Sequence[Plan] = ()) -> str:
    """What a live server's test puts in its database first: the plans, published, and a secret
    key with the scopes; the raw key."""

    async def seed() -> str:
        engine = create_engine(url)
        async with session_factory(engine)() as session, session.begin():
            if plans:
                await PlanRepository(session).publish(list(plans))
            issued = await issue_key(session, kind=KeyKind.SECRET, name=name, scopes=list(scopes), live=False)
        await engine.dispose()
        return issued.key

    return asyncio.run(seed())


def empty_database(url: str) -> None:
    """What a module that wrote through a live server leaves to the next: nothing."""

    asyncio.run(empty_tables(url))
