"""Real ``run`` processes with a ``COORDINATOR_ENGINE`` that does not load, one per way
it can fail: each starts on the built-in engine, records why on its membership row and
logs it, and ``status`` shows it; none of them decides (the one occurrence whose engine
loaded decides the wakeup, and they follow it); unsetting the setting and restarting
(the rollback) records the built-in engine with no error."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet import Fleet, coordinator, coordinator_env, wait_members

from persistence import Store
from schemas import BUILTIN_ENGINE_NAME, EngineIdentity, EngineKind, OccurrenceState

pytestmark = pytest.mark.processes

AGENT_ENGINES = """
from coordinator import EngineAnswer

class Engine:
    async def decide(self, request):
        return EngineAnswer(accept=True, reason="the agent accepts")

def broken_factory():
    raise RuntimeError("no model configured")

not_an_engine = 42
"""
BROKEN = {  # occurrence id -> (COORDINATOR_ENGINE, the failure recorded)
    "occurrence-1": ("no_such_agent.engine:Engine", "module_missing"),
    "occurrence-2": ("engine_raises:Engine", "import_failed"),
    "occurrence-3": ("agent_engines:Missing", "attribute_missing"),
    "occurrence-4": ("agent_engines:broken_factory", "factory_failed"),
    "occurrence-5": ("agent_engines:not_an_engine", "not_an_engine"),
    "occurrence-6": ("agent_engines", "malformed_name"),
}
HEALTHY = ("occurrence-7", "agent_engines:Engine")
"""The one occurrence whose engine loads: the only one that may decide."""
STOP_DEADLINE = 30  # seconds for a run to leave on SIGTERM


@pytest.fixture
def fleets() -> Iterator[list[Fleet]]:
    started: list[Fleet] = []
    yield started
    for fleet in started:
        fleet.stop_all()


def engines_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "engines"
    folder.mkdir()
    (folder / "agent_engines.py").write_text(AGENT_ENGINES)
    (folder / "engine_raises.py").write_text("raise RuntimeError('API key not set')\n")
    return folder


def stop(fleet: Fleet) -> None:
    for process in fleet.processes.values():
        process.send_signal(signal.SIGTERM)
    for occurrence_id, process in fleet.processes.items():
        assert process.wait(timeout=STOP_DEADLINE) == 0, fleet.log_of(occurrence_id)


async def test_each_broken_engine_is_recorded_and_unsetting_it_rolls_back(
    tmp_path: Path, database_url: str, fleets: list[Fleet]
) -> None:
    path = os.pathsep.join(
        p for p in (str(engines_folder(tmp_path)), os.environ.get("PYTHONPATH")) if p
    )
    count = len(BROKEN) + 1
    env = coordinator_env(database_url, AGENT_OCCURRENCE_COUNT=str(count), PYTHONPATH=path)
    broken = Fleet(tmp_path / "broken", env)
    broken.workdir.mkdir()
    fleets.append(broken)
    for occurrence_id, (spec, _) in [*BROKEN.items(), (HEALTHY[0], (HEALTHY[1], ""))]:
        broken.start(occurrence_id, env={**env, "COORDINATOR_ENGINE": spec})
    store = await Store.open(database_url)
    try:
        members = await wait_members(
            store,
            lambda ms: len(ms) == count and all(m.state is OccurrenceState.WORK for m in ms),
            deadline=120,
            what="every occurrence at work",
        )
        (wakeup,) = await store.rollouts()
        assert wakeup.decision.decided_by == HEALTHY[0], "a fallback engine decided"
        healthy = next(m for m in members if m.occurrence_id == HEALTHY[0])
        assert healthy.engine == EngineIdentity(kind=EngineKind.EXTERNAL, name=HEALTHY[1])
        for member in members:
            if member.occurrence_id == HEALTHY[0]:
                continue
            spec, failure = BROKEN[member.occurrence_id]
            assert (member.engine_kind, member.engine_name) == (
                EngineKind.BUILTIN,
                BUILTIN_ENGINE_NAME,
            )
            assert member.engine_error is not None
            assert member.engine_error.startswith(f"{failure}: "), member.engine_error
            log = broken.log_of(member.occurrence_id)
            assert '"engine_load_failed"' in log and f'"failure": "{failure}"' in log, log

        shown = coordinator("status", "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        engines = {o["occurrence_id"]: o["engine"] for o in json.loads(shown.stdout)["occurrences"]}
        assert {o: (e["error"] or "").split(":")[0] for o, e in engines.items()} == {
            **{o: failure for o, (_, failure) in BROKEN.items()},
            HEALTHY[0]: "",
        }
        text = coordinator("status", env=env).stdout
        assert text.count("builtin:accept (fallback)") == len(BROKEN), text
        assert (
            "occurrence-2: COORDINATOR_ENGINE did not load, it runs builtin:accept instead: "
            "import_failed: importing 'engine_raises' failed: RuntimeError('API key not set')"
        ) in text

        stop(broken)
        rolled_back = Fleet(tmp_path, env)  # COORDINATOR_ENGINE unset
        fleets.append(rolled_back)
        for occurrence_id in [*BROKEN, HEALTHY[0]]:
            rolled_back.start(occurrence_id)
        members = await wait_members(
            store,
            lambda ms: all(m.generation == 2 and m.state is OccurrenceState.WORK for m in ms),
            deadline=120,
            what="every occurrence restarted without COORDINATOR_ENGINE, at work",
        )
        assert {m.occurrence_id: m.engine for m in members} == {
            o: EngineIdentity.builtin() for o in [*BROKEN, HEALTHY[0]]
        }
        text = coordinator("status", env=env).stdout
        assert "fallback" not in text and "did not load" not in text, text
        stop(rolled_back)
    finally:
        await store.close()
