"""``emergency-shutdown`` and ``status`` as an operator runs them: a target that never
joined the fleet is refused with exit 2 and nothing recorded; the signed command names
its fleet (the audience) and whole seconds; ``status`` shows the fleet's id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fleet import coordinator, coordinator_env

from coordinator.runtime import PROTOCOL_VERSION
from coordinator.signing import generate_key_pair
from persistence import Store
from schemas import CommandStatus

pytestmark = pytest.mark.processes

EXIT_CONFIG = 2


@pytest.fixture
def key(tmp_path: Path) -> tuple[Path, str]:
    private, public = generate_key_pair()
    (tmp_path / "operator").write_bytes(private)
    return tmp_path / "operator", public


async def test_an_unknown_target_is_refused_with_exit_2_and_nothing_is_recorded(
    database_url: str, key: tuple[Path, str]
) -> None:
    store = await Store.open(database_url)
    try:
        await store.register("occurrence-1", host="h", pid=1, protocol_version=PROTOCOL_VERSION)
        events_before = await store.events()
        env = coordinator_env(database_url, COORDINATOR_TRUSTED_KEYS=key[1])
        for trusting in (True, False):  # verdict recorded at once, or left to the fleet
            if not trusting:
                env.pop("COORDINATOR_TRUSTED_KEYS")
            typo = coordinator(
                *("emergency-shutdown", "--reason", "typo", "--key", str(key[0])),
                *("--target", "occurrence-1", "--target", "occurence-2"),
                env=env,
            )
            assert typo.returncode == EXIT_CONFIG, typo.stdout + typo.stderr
            assert "'occurence-2'" in typo.stderr and "nothing was recorded" in typo.stderr
            assert "Traceback" not in typo.stderr
        assert await store.commands(limit=None) == []
        assert await store.events() == events_before

        known = coordinator(
            *("emergency-shutdown", "--reason", "drill", "--key", str(key[0])),
            *("--target", "occurrence-1"),
            env={**env, "COORDINATOR_TRUSTED_KEYS": key[1]},
        )
        assert known.returncode == 0, known.stdout + known.stderr
        (recorded,) = await store.commands(limit=None)
        assert recorded.status is CommandStatus.ACCEPTED
    finally:
        await store.close()


def test_print_signs_for_the_fleet_in_whole_seconds(tmp_path: Path, key: tuple[Path, str]) -> None:
    env = coordinator_env(f"sqlite+aiosqlite:///{tmp_path / 'absent.db'}")
    base = ("emergency-shutdown", "--reason", "drill", "--key", str(key[0]), "--print")

    default = coordinator(*base, env=env)
    from_env = coordinator(*base, env={**env, "COORDINATOR_FLEET_ID": "fleet-a"})
    from_flag = coordinator(
        *base, "--fleet-id", "fleet-b", env={**env, "COORDINATOR_FLEET_ID": "fleet-a"}
    )
    bad = coordinator(*base, "--fleet-id", "no spaces", env=env)

    audiences = []
    for printed in (default, from_env, from_flag):
        assert printed.returncode == 0, printed.stderr
        payload = json.loads(json.loads(printed.stdout)["payload"])
        assert isinstance(payload["issued_at"], int)
        audiences.append(payload["audience"])
    assert audiences == ["default", "fleet-a", "fleet-b"]
    assert bad.returncode == EXIT_CONFIG
    assert "COORDINATOR_FLEET_ID" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "absent.db").exists()  # --print records nothing, anywhere


async def test_status_shows_the_fleet_id(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        await store.register("occurrence-1", host="h", pid=1, protocol_version=PROTOCOL_VERSION)
    finally:
        await store.close()
    env = coordinator_env(database_url, COORDINATOR_FLEET_ID="fleet-a")

    text = coordinator("status", env=env)
    as_json = coordinator("status", "--json", env=env)

    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0] == "Fleet: fleet-a"
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["fleet_id"] == "fleet-a"
