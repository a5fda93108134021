"""A claim's evidence: multipart uploads known by their bytes, size limits, the customer's signed
link, downloads as attachments, orphans swept, and the same on an S3-compatible server (moto)."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from api.app import CoverlineApp, create_app
from api.storage import FolderStore
from api.upload_links import upload_link
from entitlements.claims.evidence import sweep_orphans
from tests.api.shop import Shop
from tests.conftest import Keys, make_settings, serving
from tests.live import free_port

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 64
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\n%%EOF\n"
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 32
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
HTML = b"<!doctype html><script>alert(1)</script>"


async def claim_in_review(shop: Shop) -> dict[str, Any]:
    contract = await shop.sell("test-reviewed")
    claim = await shop.claim(contract_id=contract["id"], incident_kind="theft_loss")
    assert claim["status"] == "in_review"
    return claim


async def upload(
    client: httpx.AsyncClient,
    url: str,
    content: bytes,
    name: str,
    type_: str,
    headers: dict[str, str],
    kind: str = "photo",
) -> httpx.Response:
    return await client.post(
        url, files={"file": (name, content, type_)}, data={"kind": kind}, headers=headers
    )


async def test_evidence_is_known_by_its_bytes_and_served_as_an_attachment(
    shop: Shop, client: httpx.AsyncClient, keys: Keys, app: CoverlineApp
) -> None:
    claim = await claim_in_review(shop)
    url = f"/v1/claims/{claim['id']}/evidence"
    desk = keys.auth("support") | {"Coverline-Agent": "hugo"}
    for content, expected in (
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (PDF, "application/pdf"),
        (HEIC, "image/heic"),
    ):
        sent = await upload(client, url, content, "photo.svg", "image/svg+xml", desk)  # the name and type lie
        assert sent.status_code == 201, sent.text
        assert (sent.json()["content_type"], sent.json()["uploaded_by"]) == (expected, "hugo")
    for content in (SVG, HTML, b"just text", b"GIF89a" + b"\x00" * 20):
        refused = await upload(client, url, content, "photo.jpg", "image/jpeg", desk)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "file", refused.text
    listed = await shop.call("GET", url, "support")
    assert [e["content_type"] for e in listed["data"]] == [
        "image/png",
        "image/jpeg",
        "application/pdf",
        "image/heic",
    ]
    first = listed["data"][0]
    download = await client.get(f"{url}/{first['id']}", headers=keys.auth("support"))
    assert download.status_code == 200 and download.content == PNG
    assert download.headers["content-type"] == "image/png"
    assert download.headers["content-disposition"] == f'attachment; filename="{first["id"]}.png"'
    assert download.headers["x-content-type-options"] == "nosniff"
    assert (await client.get(f"{url}/{first['id']}", headers=keys.auth("finance"))).status_code == 403
    assert (
        await client.get(f"/v1/claims/clm_{'0' * 20}/evidence/{first['id']}", headers=keys.auth("support"))
    ).status_code == 404
    stored = [f async for f in FolderStore(app.state.settings.var_dir / "evidence").files()]
    assert (
        len([f for f in stored if f.key.startswith(f"claims/{claim['id']}/")]) == 4
    )  # nothing refused was kept


async def test_uploads_are_limited_and_only_multipart(database_url: str, tmp_path: Path, shop: Shop) -> None:
    small = create_app(
        make_settings(database_url, evidence_max_bytes=4096, evidence_max_files=2, var_dir=tmp_path)
    )
    async with serving(small) as client:
        other = Shop(client, shop.keys)
        claim = await claim_in_review(other)
        url = f"/v1/claims/{claim['id']}/evidence"
        desk = shop.keys.auth("support")
        over = await upload(client, url, PNG + b"\x00" * 5000, "big.png", "image/png", desk)
        assert over.status_code == 422 and "at most 4096 bytes" in over.text
        huge = await upload(client, url, PNG + b"\x00" * 200_000, "huge.png", "image/png", desk)
        assert huge.status_code == 413  # refused at the edge, before it is read whole
        as_json = await client.post(url, json={"file": "x"}, headers=desk)
        assert as_json.status_code == 415
        plain = await client.post(
            "/v1/claims",
            content=b"--x\r\n",
            headers=desk | {"content-type": "multipart/form-data; boundary=x"},
        )
        assert plain.status_code == 415  # multipart is for evidence alone
        assert (await upload(client, url, PNG, "ok.png", "image/png", desk)).status_code == 201
        assert (await upload(client, url, JPEG, "ok.jpg", "image/jpeg", desk)).status_code == 201
        full = await upload(client, url, PDF, "third.pdf", "application/pdf", desk)
        assert full.status_code == 409 and "at most 2 files" in full.text  # a key or not, per claim
    assert len(list((tmp_path / "evidence" / "claims" / claim["id"]).iterdir())) == 2


async def test_the_customer_uploads_through_the_reviewers_link_until_it_expires(
    shop: Shop, client: httpx.AsyncClient, keys: Keys, app: CoverlineApp
) -> None:
    claim = await claim_in_review(shop)
    asked = await client.post(
        f"/v1/claims/{claim['id']}/review",
        json={"action": "request_info", "reason_code": "police_report"},
        headers=keys.auth("support") | {"Coverline-Agent": "rita"},
    )
    link = asked.json()["upload_url"]
    assert asked.json()["upload_expires_at"] and link.startswith("http")
    path = "/v1/" + link.split("/v1/", 1)[1]
    sent = await upload(client, path, PDF, "report.pdf", "application/pdf", {}, kind="police_report")
    assert sent.status_code == 201, sent.text
    assert (sent.json()["uploaded_by"], sent.json()["kind"]) == ("customer", "police_report")
    assert (await upload(client, path[:-2] + "xx", PDF, "r.pdf", "application/pdf", {})).status_code == 404
    old = upload_link(app.state.settings, claim["id"], dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    expired = "/v1/" + old.url.split("/v1/", 1)[1]
    assert (await upload(client, expired, PDF, "r.pdf", "application/pdf", {})).status_code == 404
    other = await claim_in_review(shop)
    forged = path.replace(claim["id"], other["id"])  # the signature is for one claim
    assert (await upload(client, forged, PDF, "r.pdf", "application/pdf", {})).status_code == 404
    history = await shop.call("GET", f"/v1/claims/{claim['id']}/history", "support")
    assert [h["actor"] for h in history["data"] if h["action"] == "evidence"] == ["customer"]
    # Once the claim is decided, its link takes no more: a link is for answering a reviewer.
    await client.post(
        f"/v1/claims/{claim['id']}/review",
        json={"action": "resume", "reason_code": "information_received"},
        headers=keys.auth("support") | {"Coverline-Agent": "rita"},
    )
    await client.post(
        f"/v1/claims/{claim['id']}/review",
        json={"action": "deny", "reason_code": "not_covered"},
        headers=keys.auth("support") | {"Coverline-Agent": "rita"},
    )
    late = await upload(client, path, PDF, "late.pdf", "application/pdf", {})
    assert late.status_code == 409 and "denied" in late.text


async def test_an_erased_customers_claim_takes_no_more_evidence(
    shop: Shop, client: httpx.AsyncClient, keys: Keys
) -> None:
    claim = await claim_in_review(shop)
    contract = await shop.call("GET", f"/v1/contracts/{claim['contract_id']}", "support")
    await shop.call("POST", f"/v1/customers/{contract['customer_id']}/erase", "admin", json={})
    url = f"/v1/claims/{claim['id']}/evidence"
    refused = await upload(client, url, PNG, "after.png", "image/png", keys.auth("support"))
    assert refused.status_code == 409 and "erased" in refused.text


async def test_orphans_are_swept_and_evidence_stays(
    shop: Shop, client: httpx.AsyncClient, keys: Keys, app: CoverlineApp
) -> None:
    claim = await claim_in_review(shop)
    kept = await upload(
        client, f"/v1/claims/{claim['id']}/evidence", PNG, "a.png", "image/png", keys.auth("support")
    )
    store = FolderStore(app.state.settings.var_dir / "evidence")
    await store.put("claims/clm_orphan/evd_lost.png", PNG, "image/png")
    old = time.time() - 7200
    os.utime(store.root / "claims/clm_orphan/evd_lost.png", (old, old))
    await store.put("claims/clm_orphan/evd_fresh.png", PNG, "image/png")  # an upload in flight, maybe
    for path in (store.root / "claims" / claim["id"]).iterdir():
        os.utime(path, (old, old))  # old, but named by a row
    deleted = await sweep_orphans(app.state.db.sessions, store, dt.datetime.now(dt.UTC))
    assert deleted == 1
    assert not (store.root / "claims/clm_orphan/evd_lost.png").exists()
    assert (store.root / "claims/clm_orphan/evd_fresh.png").exists()
    assert (
        await client.get(
            f"/v1/claims/{claim['id']}/evidence/{kept.json()['id']}", headers=keys.auth("support")
        )
    ).content == PNG
    await store.delete("claims/clm_orphan/evd_fresh.png")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="coverline-evidence")
    yield endpoint
    server.stop()


@pytest.fixture
async def s3_app(database_url: str, s3_endpoint: str, tmp_path: Path) -> AsyncIterator[CoverlineApp]:
    yield create_app(
        make_settings(
            database_url,
            evidence_store="s3://coverline-evidence/claims-files",
            s3_endpoint_url=s3_endpoint,
            var_dir=tmp_path,
        )
    )


async def test_evidence_in_an_s3_compatible_store(s3_app: CoverlineApp, shop: Shop, s3_endpoint: str) -> None:
    async with serving(s3_app) as client:
        other = Shop(client, shop.keys)
        claim = await claim_in_review(other)
        sent = await upload(
            client,
            f"/v1/claims/{claim['id']}/evidence",
            JPEG,
            "a.jpg",
            "image/jpeg",
            shop.keys.auth("support"),
        )
        assert sent.status_code == 201, sent.text
        got = await client.get(
            f"/v1/claims/{claim['id']}/evidence/{sent.json()['id']}", headers=shop.keys.auth("support")
        )
        assert got.content == JPEG
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="coverline-evidence")["Contents"]]
    assert f"claims-files/claims/{claim['id']}/{sent.json()['id']}.jpg" in keys
    store = s3_app.state.evidence_store
    await store.put("claims/clm_orphan/evd_lost.png", PNG, "image/png")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    assert await sweep_orphans(s3_app.state.db.sessions, store, later) == 1
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="coverline-evidence")["Contents"]]
    assert "claims-files/claims/clm_orphan/evd_lost.png" not in keys and len(keys) == 1


async def test_an_upload_sent_again_with_its_idempotency_key_is_kept_once(
    shop: Shop, client: httpx.AsyncClient, keys: Keys
) -> None:
    claim = await claim_in_review(shop)
    url = f"/v1/claims/{claim['id']}/evidence"
    headers = keys.auth("support") | {"Idempotency-Key": "photo-upload-1"}
    files = {"file": ("a.png", PNG, "image/png")}
    first = await client.post(url, files=files, data={"kind": "photo"}, headers=headers)
    again = await client.post(url, files=files, data={"kind": "photo"}, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert first.json()["id"] == again.json()["id"]  # another boundary, the same parts
    other = await client.post(url, files={"file": ("a.png", PNG + b"\x01", "image/png")}, headers=headers)
    assert other.status_code == 422 and "different request" in other.text  # other bytes: refused
    assert len((await shop.call("GET", url, "support"))["data"]) == 1


@pytest.mark.parametrize(
    "part",
    [
        b'Content-Disposition: form-data; name="file"; filename=""\r\nContent-Type: image/png\r\n\r\n' + PNG,
        b'Content-Disposition: form-data; name="kind"\r\n\r\n\xff\xfe',
        b'Content-Disposition: form-data; name="kind"\r\nContent-Type: text/plain; charset=x-nonexistent\r\n\r\nphoto',
    ],
    ids=["empty-filename", "text-not-utf8", "unknown-charset"],
)
async def test_a_malformed_multipart_part_is_a_problem_not_a_crash(shop: Shop, part: bytes) -> None:
    claim = await claim_in_review(shop)
    body = b"--XB\r\n" + part + b"\r\n--XB--\r\n"
    response = await shop.client.post(
        f"/v1/claims/{claim['id']}/evidence",
        content=body,
        headers={**shop.keys.auth("support"), "Content-Type": "multipart/form-data; boundary=XB"},
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("name", ["photo\u202egnp.exe", "scan\U000e0041.pdf", "\u0301"])
async def test_a_file_whose_name_does_not_read_is_kept_without_its_name(
    shop: Shop, client: httpx.AsyncClient, keys: Keys, app: CoverlineApp, name: str
) -> None:
    """The name was checked after the file was stored: the upload failed with a 422 and left the
    file behind with no row."""
    claim = await claim_in_review(shop)
    url = f"/v1/claims/{claim['id']}/evidence"
    sent = await upload(client, url, PNG, name, "image/png", keys.auth("support"))
    assert sent.status_code == 201, sent.text
    assert sent.json().get("filename") is None
    stored = [f async for f in FolderStore(app.state.settings.var_dir / "evidence").files()]
    listed = await shop.call("GET", url, "support")
    assert len(listed["data"]) == 1 and len(stored) >= 1


async def test_a_long_file_name_is_kept_shortened(shop: Shop, client: httpx.AsyncClient, keys: Keys) -> None:
    claim = await claim_in_review(shop)
    url = f"/v1/claims/{claim['id']}/evidence"
    sent = await upload(client, url, PNG, "receipt-" + "x" * 300 + ".png", "image/png", keys.auth("support"))
    assert sent.status_code == 201, sent.text
    assert sent.json()["filename"] == ("receipt-" + "x" * 300)[:200]
