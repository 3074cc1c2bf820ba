"""Helpers to run real ``python -m coordinator`` processes against one database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

import anyio
import child_processes

from persistence import Store
from schemas import LifecycleKind, OccurrenceRecord, RolloutRecord

# Real seconds: short, but with room for 9 Python processes starting on 2 cores.
PROCESS_TIMINGS = {
    "COORDINATOR_POLL_INTERVAL": "0.2",
    "COORDINATOR_HEARTBEAT_INTERVAL": "0.5",
    "COORDINATOR_MEMBER_TTL": "10",
    "COORDINATOR_LEASE_TTL": "3",
    "COORDINATOR_EXPLORER_SOAK": "1",
    "COORDINATOR_EARLY_ADOPTER_SOAK": "2",
    "COORDINATOR_HEALTH_POLL": "0.25",
    "COORDINATOR_HEALTH_TIMEOUT": "30",
    "COORDINATOR_DISCOVERY_GRACE": "60",
}


def coordinator_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORDINATOR_")}
    env.update(PROCESS_TIMINGS)
    env["COORDINATOR_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def coordinator(
    *args: str, env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return child_processes.run(
        [sys.executable, "-m", "coordinator", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Fleet:
    """N ``run`` processes, stopped (killed if need be) when the test ends."""

    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.env = dict(env)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def start(
        self,
        occurrence_id: str,
        *,
        wrapper: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start one occurrence; ``wrapper`` prefixes the command (e.g. ``ip netns exec
        NS``), ``env`` replaces the fleet's environment for this one."""
        log = (self.workdir / f"{occurrence_id}.log").open("wb")
        self._logs.append(log)
        process = child_processes.popen(
            [
                *wrapper,
                sys.executable,
                "-m",
                "coordinator",
                "run",
                "--occurrence-id",
                occurrence_id,
                "--log-json",
            ],
            env=dict(env) if env is not None else self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes[occurrence_id] = process
        return process

    def log_of(self, occurrence_id: str) -> str:
        return (self.workdir / f"{occurrence_id}.log").read_text(errors="replace")

    async def wait_exits(self, deadline: float) -> dict[str, int]:
        with anyio.fail_after(deadline):
            while any(p.poll() is None for p in self.processes.values()):
                await anyio.sleep(0.2)
        return {k: p.returncode for k, p in self.processes.items()}

    async def wait_exits_of(self, occurrence_ids: list[str], deadline: float) -> dict[str, int]:
        chosen = {k: self.processes[k] for k in occurrence_ids}
        with anyio.fail_after(deadline):
            while any(p.poll() is None for p in chosen.values()):
                await anyio.sleep(0.1)
        return {k: p.returncode for k, p in chosen.items()}

    def stop_all(self) -> None:
        for process in self.processes.values():
            child_processes.end(process)  # with its group: a wrapper's child too
        for log in self._logs:
            log.close()


async def wait_members(
    store: Store,
    condition: Callable[[list[OccurrenceRecord]], bool],
    deadline: float,
    what: str,
) -> list[OccurrenceRecord]:
    """Poll the membership table until ``condition`` holds; fail after ``deadline`` s."""
    try:
        with anyio.fail_after(deadline):
            while True:
                members = await store.members()
                if condition(members):
                    return members
                await anyio.sleep(0.25)
    except TimeoutError:
        members = await store.members()
        raise AssertionError(
            f"timed out waiting for {what}: "
            + ", ".join(f"{m.occurrence_id}={m.state.value}" for m in members)
        ) from None


async def wait_rollout(store: Store, kind: LifecycleKind, deadline: float) -> RolloutRecord:
    """Poll until the newest rollout of ``kind`` is finished; fail after ``deadline`` s."""
    with anyio.fail_after(deadline):
        while True:
            found = await store.rollouts(kind=kind, limit=1)
            if found and found[0].status.is_finished:
                return found[0]
            await anyio.sleep(0.25)
