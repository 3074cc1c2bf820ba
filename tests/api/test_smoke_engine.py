"""Which engine each occurrence loaded, over HTTP: ``/v1/diagnostics`` lists it per
occurrence, and ``smoke --expect-engine`` fails naming every live occurrence that loaded
something else (a real ``serve``, a real ``smoke``)."""

from __future__ import annotations

import json

import pytest
from api_server import ApiServer, smoke
from fleet_state import MEMBERS

from coordinator.runtime import PROTOCOL_VERSION
from persistence import Store
from schemas import EngineIdentity, EngineKind

pytestmark = pytest.mark.processes

EXTERNAL = EngineIdentity(kind=EngineKind.EXTERNAL, name="my_agent.engine:Engine")
FALLBACK = EngineIdentity.builtin("module_missing: cannot import 'my_agent.engine'")


async def register(db: Store, occurrence_id: str, engine: EngineIdentity) -> None:
    # A new incarnation of a seeded member: it supersedes the one that recorded no engine.
    await db.register(
        occurrence_id, host="seeded", pid=0, protocol_version=PROTOCOL_VERSION, engine=engine
    )


async def test_diagnostics_list_the_engine_of_each_occurrence(api: ApiServer, db: Store) -> None:
    await register(db, "occurrence-2", EXTERNAL)
    await register(db, "occurrence-3", FALLBACK)
    stopped = await db.register("occurrence-4", host="h", pid=1, protocol_version=1)
    await db.deregister(stopped, reason="test")

    async with api.client() as client:
        engine = (await client.get("/v1/diagnostics")).json()["engine"]

    assert engine["source"] == "builtin:accept"  # the server's own setting
    shown = {e["occurrence_id"]: e for e in engine["occurrences"]}
    assert {o: (e["kind"], e["name"], e["error"]) for o, e in shown.items()} == {
        "occurrence-1": ("unknown", None, None),
        "occurrence-2": ("external", EXTERNAL.name, None),
        "occurrence-3": ("builtin", "builtin:accept", FALLBACK.error),
        "occurrence-4": ("unknown", None, None),
    }
    assert [o for o, e in shown.items() if not e["alive"]] == ["occurrence-4"]
    assert all(e["incarnation_id"] for e in shown.values())


async def test_smoke_expect_engine_names_each_live_occurrence_that_loaded_another(
    api: ApiServer, db: Store
) -> None:
    unrecorded = smoke("--base-url", api.base_url, "--expect-engine", "builtin")
    assert unrecorded.returncode == 1
    for occurrence_id in MEMBERS:
        assert f"{occurrence_id} recorded no engine" in unrecorded.stdout

    await register(db, "occurrence-1", EngineIdentity.builtin())
    await register(db, "occurrence-2", EXTERNAL)
    await register(db, "occurrence-3", FALLBACK)
    stopped = await db.register(
        "occurrence-4", host="h", pid=1, protocol_version=1, engine=EXTERNAL
    )
    await db.deregister(stopped, reason="a stopped one is not checked")

    builtin = smoke("--base-url", api.base_url, "--expect-engine", "builtin")
    external = smoke("--base-url", api.base_url, "--expect-engine", EXTERNAL.name, "--json")

    assert builtin.returncode == 1
    out = builtin.stdout
    assert (
        "FAIL  diagnostics  occurrence-2 loaded external engine my_agent.engine:Engine, "
        "expected builtin"
    ) in out
    assert (
        "occurrence-3 runs builtin:accept because its COORDINATOR_ENGINE did not load: "
        "module_missing: cannot import 'my_agent.engine', expected builtin"
    ) in out
    assert "occurrence-1" not in out and "occurrence-4" not in out
    assert "smoke check FAILED: 1 of 4 checks (diagnostics)" in out
    assert external.returncode == 1
    diagnostics = next(
        c for c in json.loads(external.stdout)["checks"] if c["check"] == "diagnostics"
    )
    assert [p.split()[0] for p in diagnostics["problems"]] == ["occurrence-1", "occurrence-3"]

    await register(db, "occurrence-2", EngineIdentity.builtin())
    await register(db, "occurrence-3", EngineIdentity.builtin())  # the rollback, done
    passed = smoke("--base-url", api.base_url, "--expect-engine", "builtin")

    assert passed.returncode == 0, passed.stdout
    assert "engine builtin on all 3 live occurrence(s)" in passed.stdout


def test_smoke_refuses_a_blank_expected_engine() -> None:
    result = smoke("--base-url", "http://127.0.0.1:9", "--expect-engine", " ")
    assert result.returncode == 2
    assert "--expect-engine needs a name" in result.stderr
