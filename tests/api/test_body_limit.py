"""A body over the limit is refused without being read: a declared length at once, a
chunked one as soon as the bytes received pass the limit. The server's memory and the
time to answer stay those of a small request, and the server goes on serving.

The server closes the connection after its 413 without reading the rest, so the client's
next write fails and it reads the answer then: a blocking client (httpx's sync one, as
curl and urllib3 do) finds the answer there. An asyncio client's transport drops what it
had not read yet when a write fails, so these tests post from a thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from api_server import ApiServer
from fleet_state import Seeded, assert_nothing_changed, snapshot

from coordinator.api.body_limit import MAX_BODY_BYTES
from persistence import Store

pytestmark = pytest.mark.processes

UPLOAD = 50 * 1024 * 1024  # bytes the client offers
CHUNK = 256 * 1024
ANSWER_DEADLINE = 20.0  # seconds; reading all 50 MB first took about as long on a busy machine
# What the server may read and buffer past the 64 KiB limit: one chunk, its socket buffer
# and uvicorn's; reading the whole upload costs at least the upload itself, twice over.
MEMORY_GROWTH_BOUND = 16 * 1024 * 1024
# What the client can have handed over before the answer: the limit plus the kernel's
# socket buffers on both sides of loopback (a few MB). Consumed whole, it is all 50 MB.
SENT_BOUND = UPLOAD // 4


def peak_memory(pid: int) -> int:
    """The process's peak resident set size (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


class Upload:
    """A JSON-looking body of ``UPLOAD`` bytes made as it is sent; counts what the client
    took from it (it takes no more once the server closed the connection)."""

    def __init__(self) -> None:
        self.taken = 0

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"reason": "'
        while self.taken < UPLOAD:
            self.taken += CHUNK
            yield b"x" * CHUNK
        yield b'"}'


def post_chunked(api: ApiServer, body: Iterable[bytes]) -> httpx.Response:
    """POST /v1/shutdown with ``body`` sent chunked (an iterator has no length to declare),
    then check the server still answers, on a new connection."""
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=api.base_url, headers=headers, timeout=ANSWER_DEADLINE) as client:
        response = client.post("/v1/shutdown", content=iter(body))
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert client.get("/v1/status").status_code == 200
    return response


async def test_a_chunked_upload_of_50_mb_is_refused_at_the_limit_without_reading_it(
    api: ApiServer, seeded: Seeded, db: Store
) -> None:
    before = await snapshot(db)
    memory_before = peak_memory(api.process.pid)
    upload = Upload()
    started = time.monotonic()

    response = await anyio.to_thread.run_sync(post_chunked, api, upload)

    elapsed = time.monotonic() - started
    assert response.status_code == 413, response.text
    assert response.json() == {
        "error": "body_too_large",
        "message": f"the request body exceeds {MAX_BODY_BYTES} bytes",
    }
    assert upload.taken < SENT_BOUND, f"the client sent {upload.taken} bytes"
    assert response.headers["connection"] == "close"
    assert elapsed < ANSWER_DEADLINE
    growth = peak_memory(api.process.pid) - memory_before
    assert growth < MEMORY_GROWTH_BOUND, f"the server's peak memory grew by {growth} bytes"
    assert_nothing_changed(before, await snapshot(db), "a 50 MB chunked upload")


def in_chunks(body: bytes) -> Iterator[bytes]:
    for at in range(0, len(body), 1000):
        yield body[at : at + 1000]


async def test_a_chunked_body_one_byte_over_the_limit_is_413_and_one_at_it_is_read(
    api: ApiServer, seeded: Seeded, db: Store
) -> None:
    at_limit = b'{"reason": "x"}'.ljust(MAX_BODY_BYTES)
    before = await snapshot(db)

    over = await anyio.to_thread.run_sync(post_chunked, api, in_chunks(at_limit + b" "))
    assert over.status_code == 413, over.text
    assert_nothing_changed(before, await snapshot(db), "a chunked body over the limit")
    accepted = await anyio.to_thread.run_sync(post_chunked, api, in_chunks(at_limit))
    assert accepted.status_code == 202, accepted.text
