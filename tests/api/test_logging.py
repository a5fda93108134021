"""Access lines carry the request id; keys and query strings never reach the log."""

import json
import logging
import secrets

import pytest

from api.app import create_app
from tests.conftest import Keys, make_settings, serving


async def test_access_log_has_request_id_and_no_secrets(
    database_url: str, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(make_settings(database_url, log_format="json", log_level="INFO"))
    async with serving(app) as client:
        response = await client.get(
            "/v1/entitlements",
            params={"locale": "sv", "serial": "SECRET-SERIAL"},
            headers=keys.auth("support"),
        )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("event") == "request"]
    assert access, lines
    assert access[-1]["request_id"] == response.headers["x-request-id"]
    assert access[-1]["path"] == "/v1/entitlements"
    assert access[-1]["status"] == 200
    everything = json.dumps(lines)
    assert keys.raw["support"] not in everything
    assert "SECRET-SERIAL" not in everything


async def test_the_libraries_log_lines_come_out_in_the_same_format(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    create_app(make_settings(database_url, log_format="json", log_level="INFO"))
    logging.getLogger("uvicorn.error").warning("Started server process [%d]", 4242)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (line,) = [x for x in lines if x.get("logger") == "uvicorn.error"]
    assert (line["event"], line["level"]) == ("Started server process [4242]", "warning")
    assert "timestamp" in line


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_control_and_bidi_characters_are_escaped_in_every_line(
    database_url: str, capsys: pytest.CaptureFixture[str], log_format: str
) -> None:
    import structlog

    create_app(make_settings(database_url, log_format=log_format, log_level="INFO"))
    capsys.readouterr()
    forged = "ok\n2026-01-01 [info] admin signed in\u202egnp.exe"
    structlog.get_logger("test").info("lookup", path=f"/v1/x/{forged}")
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one line: the newline inside the value did not start another
    assert "\u202e" not in out and "\\u202e" in out  # the mark written out, not obeyed
    if log_format == "json":
        assert json.loads(out)["path"] == f"/v1/x/{forged}"  # JSON's own escapes: read back whole


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_a_traceback_names_the_frames_never_their_local_values(
    database_url: str, capsys: pytest.CaptureFixture[str], log_format: str
) -> None:
    """A key or a customer's data held in a local variable stays out of the log."""
    import structlog

    create_app(make_settings(database_url, log_format=log_format, log_level="INFO"))
    capsys.readouterr()

    def charge(api_key: str) -> None:
        raise ValueError("declined")

    secret = "sk_live_" + secrets.token_hex(16)  # made here: in no line of source a traceback quotes
    for logger in (structlog.get_logger("test"), logging.getLogger("asyncio")):  # ours, a library's
        try:
            charge(secret)
        except ValueError:
            logger.exception("payment failed")
        out = capsys.readouterr().out
        assert "charge" in out and "declined" in out  # the frames and the error are there
        assert secret not in out


async def test_a_request_the_client_left_is_not_logged_as_a_server_error(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A body never finished (the client went away, or the server answered the broken framing
    itself): nothing was sent, and the access line said 500, a server error anyone could fake."""
    app = create_app(make_settings(database_url, log_format="json", log_level="INFO"))
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/customers",
        "raw_path": b"/v1/customers",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"10")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
        "asgi": {"version": "3.0"},
        "state": {},
    }
    async with serving(app):
        await app(scope, receive, send)
    assert sent == []
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    [access] = [
        line for line in lines if line.get("event") == "request" and line.get("path") == "/v1/customers"
    ]
    assert access["status"] is None
