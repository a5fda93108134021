"""The README's shell blocks, run as a reader would: each in a fresh shell, twice, in two time
zones, against the production server with the demo catalog and keys (`make tour`).

A line ending in `#=> text` is checked: its output must begin with `text` (up to a `…`, which
stands for whatever follows). A block after `<!-- not run by the tour: why -->` is left out.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DEMO_CATALOG, ROOT, fresh_database
from tests.live import coverline_server

README = ROOT / "README.md"
COVERLINE = str(Path(sys.executable).parent / "coverline")
BASH = shutil.which("bash") or "/bin/bash"
_BLOCK = re.compile(r"(<!-- not run by the tour:[^>]*-->\s*)?```sh\n(.*?)```", re.S)
_EXPECT = re.compile(r"^(?P<command>.*?)\s+#=> (?P<expected>.*)$")
# Far apart on the clock: a date taken from the local zone would differ from the server's.
ZONES = ("Pacific/Kiritimati", "Pacific/Pago_Pago")

PRELUDE = """set -euo pipefail
__expect() {
  local got want=${1%%…*}
  got=$(cat)
  case "$got" in
    "$want"*) ;;
    *) printf 'expected: %s\\n     got: %s\\n' "$1" "$got" >&2; exit 1 ;;
  esac
}
"""


def tour_blocks() -> list[tuple[int, str]]:
    """(line, block) for each shell block of the README the tour runs."""
    text = README.read_text()
    return [
        (text.count("\n", 0, match.start(2)) + 1, match.group(2))
        for match in _BLOCK.finditer(text)
        if match.group(1) is None
    ]


def checked(block: str) -> str:
    """The block with the output of each `#=>` line piped into a check."""
    lines = []
    for line in block.splitlines():
        found = _EXPECT.match(line)
        if found:
            quoted = "'" + found["expected"].replace("'", "'\\''") + "'"
            line = f"{found['command']} | __expect {quoted}"
        lines.append(line)
    return PRELUDE + "\n".join(lines) + "\n"


def test_the_tour_has_blocks_and_checks() -> None:
    blocks = tour_blocks()
    assert len(blocks) >= 5
    assert sum(block.count("#=> ") for _, block in blocks) >= 10


@pytest.fixture(scope="module")
def demo(
    postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    """The server as `make run` leaves it: migrated, the demo catalog published, demo keys made
    into `var/demo-keys.env` of a folder the blocks run in."""
    home = tmp_path_factory.mktemp("tour")
    with fresh_database(postgres_admin_url, "coverline_tour") as url:
        env = {**os.environ, "DATABASE_URL": url, "COVERLINE_VAR_DIR": str(home / "var")}
        for command in (
            ["db", "upgrade"],
            ["catalog", "load", str(DEMO_CATALOG)],
            ["demo-keys", "--env-file", str(home / "var" / "demo-keys.env")],
        ):
            subprocess.run([COVERLINE, *command], env=env, cwd=home, check=True, capture_output=True)
        with coverline_server({"DATABASE_URL": url, "COVERLINE_VAR_DIR": str(home / "var")}) as base:
            yield base, {"HOME": str(home), "DATABASE_URL": url, "COVERLINE_VAR_DIR": str(home / "var")}


@pytest.mark.parametrize(
    ("line", "block"), tour_blocks(), ids=lambda value: f"README:{value}" if isinstance(value, int) else ""
)
def test_a_readme_block_runs_as_written_twice_in_any_time_zone(
    demo: tuple[str, dict[str, str]], line: int, block: str
) -> None:
    base, env = demo
    script = checked(block.replace("localhost:8000", base.removeprefix("http://")))
    script = script.replace(".venv/bin/coverline", COVERLINE).replace("catalog/demo.toml", str(DEMO_CATALOG))
    for zone in ZONES:
        done = subprocess.run(
            [BASH, "-c", script],
            cwd=env["HOME"],
            env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "TZ": zone, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"README line {line}, TZ={zone}:\n{done.stderr}\n{done.stdout[-2000:]}"
