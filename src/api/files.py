"""Files under var/ that hold secrets or personal data (development secrets, demo keys, letters,
evidence): created readable by their owner alone (0600), never briefly wider."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE = 0o600


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, created 0600 (whatever the umask) and renamed into place, so a
    reader sees the old file or the new one, never half of one."""
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    os.chmod(partial, PRIVATE)  # an older partial file kept its mode through O_CREAT
    os.replace(partial, path)


def append_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE)
    with os.fdopen(descriptor, "a") as out:
        out.write(text)
    os.chmod(path, PRIVATE)
