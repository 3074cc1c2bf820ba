"""Invariant 1 across real processes: of many claimers of one task, exactly one wins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import child_processes
import pytest

from persistence import Store

pytestmark = pytest.mark.processes

RACERS = 8

CLAIMER = """
import asyncio, sys
from pathlib import Path
from persistence import Store

async def main(url, task_id, me, go):
    store = await Store.open(url)
    while not Path(go).exists():  # a common start line, so the claims really race
        await asyncio.sleep(0.005)
    claim = await store.claim_task(task_id, me, 30.0)
    print("won" if claim else "lost", flush=True)
    await store.close()

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.parametrize("round_no", range(3))
async def test_claims_from_racing_processes_have_one_winner(
    tmp_path: Path, database_url: str, round_no: int
) -> None:
    url = database_url  # a fresh database per round and backend
    store = await Store.open(url)
    try:
        task, _ = await store.request_shutdown(f"race {round_no}", "test")
        go = tmp_path / "go"
        racers = [
            child_processes.popen(
                [sys.executable, "-c", CLAIMER, url, task.task_id, f"p{i}", str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(RACERS)
        ]
        await anyio.sleep(2.0)  # let them connect; the race starts when `go` appears
        go.touch()
        outcomes = [p.communicate(timeout=60) for p in racers]
        assert all(p.returncode == 0 for p in racers), [err for _, err in outcomes]
        results = sorted(out.strip() for out, _ in outcomes)
        assert results == ["lost"] * (RACERS - 1) + ["won"]
        claimed = await store.task(task.task_id)
        assert claimed is not None and claimed.fencing_token == 1
        assert len(await store.events(kinds=("task_claimed",))) == 1
    finally:
        await store.close()
