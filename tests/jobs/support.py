"""Helpers for job tests: wait for a job to end, fetch an export, run an import directly."""

from __future__ import annotations

import asyncio
import gzip
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from globeguard.jobs.repository import JobRepository
from globeguard.wiring import Container

TERMINAL = ("completed", "failed", "cancelled")
# An upper bound only, so a broken runner fails the test instead of hanging it; no test
# asserts on how long a job took.
MAX_WAIT_S = 120.0


async def wait_job(container: Container, job_id: uuid.UUID | str) -> Any:
    """The job once it has ended (polling the table)."""
    job_id = uuid.UUID(str(job_id))
    loop = asyncio.get_running_loop()
    give_up = loop.time() + MAX_WAIT_S
    while loop.time() < give_up:
        async with container.db.read() as session:
            job = await JobRepository(session).get(job_id)
        if job is not None and job.status in TERMINAL:
            return job
        container.job_runner.wake()
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} did not end")


async def export_lines(
    client: httpx.AsyncClient, container: Container, headers: dict[str, str], **body: Any
) -> list[bytes]:
    """Run an export through the API and return its decompressed lines."""
    response = await client.post("/api/v1/jobs/users-exports", json=body, headers=headers)
    assert response.status_code == 202, response.text
    job = await wait_job(container, response.json()["id"])
    assert job.status == "completed", job.error
    view = (await client.get(f"/api/v1/jobs/{job.id}", headers=headers)).json()
    download = await client.get(view["location"].removeprefix("http://testserver"))
    assert download.status_code == 200, download.text
    return gzip.decompress(download.content).splitlines()


def ndjson(records: list[Any]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


async def import_file(
    client: httpx.AsyncClient,
    container: Container,
    headers: dict[str, str],
    content: bytes,
    *,
    upsert: bool = False,
    filename: str = "users.json",
) -> Any:
    files = {"users": (filename, content, "application/octet-stream")}
    data = {"upsert": "true" if upsert else "false"}
    response = await client.post(
        "/api/v1/jobs/users-imports", files=files, data=data, headers=headers
    )
    assert response.status_code == 202, response.text
    return await wait_job(container, response.json()["id"])


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path
