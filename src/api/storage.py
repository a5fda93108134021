"""The evidence store's adapters: a folder (the default, under var/evidence) and any S3-compatible
bucket (`COVERLINE_EVIDENCE_STORE=s3://bucket/prefix`, `COVERLINE_S3_ENDPOINT_URL` for one that
is not AWS; credentials as boto3 finds them). boto3 is blocking: each call runs in a thread."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from api.files import write_private
from api.settings import Settings
from entitlements.claims.evidence import EvidenceStore, StoredFile


class FolderStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"not a key of this store: {key}")
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        def write() -> None:
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_private(path, data)  # whole or not at all, readable by the server alone

        await asyncio.to_thread(write)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    async def files(self) -> AsyncIterator[StoredFile]:
        def walk() -> list[StoredFile]:
            if not self.root.exists():
                return []
            return [
                StoredFile(
                    path.relative_to(self.root).as_posix(),
                    dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC),
                )
                for path in sorted(self.root.rglob("*"))
                if path.is_file() and not path.name.endswith(".partial")
            ]

        for stored in await asyncio.to_thread(walk):
            yield stored


class S3Store:
    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None) -> None:
        import boto3

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ContentType=content_type,
        )

    async def get(self, key: str) -> bytes:
        answer = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        return bytes(await asyncio.to_thread(answer["Body"].read))

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self._key(key))

    async def files(self) -> AsyncIterator[StoredFile]:
        paginator = self.client.get_paginator("list_objects_v2")
        prefix = f"{self.prefix}/" if self.prefix else ""
        pages = await asyncio.to_thread(lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=prefix)))
        for page in pages:
            for item in page.get("Contents", []):
                yield StoredFile(item["Key"].removeprefix(prefix), item["LastModified"])


def evidence_store(settings: Settings) -> EvidenceStore:
    if settings.evidence_store == "file":
        return FolderStore(settings.var_dir / "evidence")
    bucket, _, prefix = settings.evidence_store.removeprefix("s3://").partition("/")
    return S3Store(bucket, prefix, settings.s3_endpoint_url)
