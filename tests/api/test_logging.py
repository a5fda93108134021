"""Access lines carry the request id; keys and query strings never reach the log."""

import json

import httpx
import pytest

from api.logs import configure_logging
from tests.conftest import Keys


async def test_access_log_has_request_id_and_no_secrets(
    client: httpx.AsyncClient, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "INFO")
    response = await client.get(
        "/v1/plans", params={"locale": "sv", "serial": "SECRET-SERIAL"}, headers=keys.auth("support")
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("event") == "request"]
    assert access, lines
    assert access[-1]["request_id"] == response.headers["x-request-id"]
    assert access[-1]["path"] == "/v1/plans"
    assert access[-1]["status"] == 200
    everything = json.dumps(lines)
    assert keys.raw["support"] not in everything
    assert "SECRET-SERIAL" not in everything
