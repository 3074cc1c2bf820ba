"""Invariant 5 with real processes: a signed emergency command stops exactly its
targets at once (``run`` exits 3), bypassing decisions and waves; a forged or replayed
one changes nothing and is recorded as refused. And an operator's hand on a rollout:
a paused rollout signals nothing until resumed; conflicting commands are refused."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from fleet import Fleet, coordinator, coordinator_env, wait_members, wait_rollout
from invariants import check_fleet_invariants

from coordinator.signing import generate_key_pair
from persistence import Store
from schemas import (
    WAVE_ORDER,
    AckVerdict,
    CommandKind,
    CommandStatus,
    EventKind,
    LifecycleKind,
    OccurrenceState,
    RolloutStatus,
    TaskStatus,
    WaveStatus,
)

pytestmark = pytest.mark.processes

OCCURRENCES = ("occurrence-1", "occurrence-2", "occurrence-3")


def write_keys(folder: Path, name: str) -> tuple[Path, Path]:
    private, public = generate_key_pair()
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(private)
    (folder / f"{name}.pub").write_text(public + "\n")
    return folder / name, folder / f"{name}.pub"


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    trusted, trusted_pub = write_keys(tmp_path / "keys", "operator")
    forged, _ = write_keys(tmp_path / "keys", "intruder")
    return {"trusted": trusted, "trusted_pub": trusted_pub, "forged": forged}


@pytest.fixture
def fleet(tmp_path: Path, database_url: str, keys: dict[str, Path]) -> Iterator[Fleet]:
    running = Fleet(
        tmp_path,
        coordinator_env(
            database_url,
            AGENT_OCCURRENCE_COUNT=str(len(OCCURRENCES)),
            COORDINATOR_TRUSTED_KEYS=str(keys["trusted_pub"]),
        ),
    )
    try:
        yield running
    finally:
        running.stop_all()


async def serving(store: Store, fleet: Fleet) -> None:
    for occurrence_id in OCCURRENCES:
        fleet.start(occurrence_id)
    await wait_members(
        store,
        lambda ms: sum(m.state is OccurrenceState.WORK for m in ms) == len(OCCURRENCES),
        deadline=120,
        what="every occurrence serving",
    )


async def test_signed_emergency_stop_stops_its_targets_and_nothing_else(
    fleet: Fleet, database_url: str, keys: dict[str, Path]
) -> None:
    store = await Store.open(database_url)
    try:
        await serving(store, fleet)
        emergency = ("emergency-shutdown", "--reason", "drill")

        forged = coordinator(*emergency, "--key", str(keys["forged"]), env=fleet.env)
        assert forged.returncode == 1, forged.stderr
        assert "unknown_key" in forged.stderr
        assert all(p.poll() is None for p in fleet.processes.values())

        one = coordinator(
            *emergency,
            "--key",
            str(keys["trusted"]),
            "--target",
            "occurrence-1",
            "--wait",
            env=fleet.env,
        )
        assert one.returncode == 0, one.stdout + one.stderr
        codes = await fleet.wait_exits_of(["occurrence-1"], deadline=30)
        assert codes == {"occurrence-1": 3}
        await anyio.sleep(1.0)  # the others had every chance to (wrongly) stop too
        assert fleet.processes["occurrence-2"].poll() is None
        assert fleet.processes["occurrence-3"].poll() is None

        stop_one = next(
            c for c in await store.commands(kind=CommandKind.EMERGENCY_SHUTDOWN) if c.accepted
        )
        assert stop_one.signed is not None
        replay = await store.submit_emergency(stop_one.signed, issued_by="replayer")
        with anyio.fail_after(30):  # an occurrence verifies it: the nonce was used
            while (await store.command(replay.command_id)).status is CommandStatus.PENDING:
                await anyio.sleep(0.05)
        assert (await store.command(replay.command_id)).refusal == "replayed"

        everyone = coordinator(*emergency, "--key", str(keys["trusted"]), "--wait", env=fleet.env)
        assert everyone.returncode == 0, everyone.stdout + everyone.stderr
        codes = await fleet.wait_exits(deadline=30)
        assert set(codes.values()) == {3}, codes

        acks = {
            c.command_id: await store.emergency_acks(c.command_id)
            for c in await store.commands(kind=CommandKind.EMERGENCY_SHUTDOWN)
        }
        stopped = [a for found in acks.values() for a in found if a.verdict is AckVerdict.STOPPED]
        assert sorted(a.occurrence_id for a in stopped) == sorted(OCCURRENCES)  # once each
        states = [e.details["state"] for e in await store.events(kinds=(EventKind.RUN_STATE,))]
        assert states.count("cancelled") == len(OCCURRENCES)
        assert states.count("cancel_requested") == 2
    finally:
        await store.close()


# Seconds: the operator's `rollout pause` (a CLI process starting on a busy machine) must
# land while the shutdown's first wave soaks, or there is no running rollout left to pause.
PAUSE_WINDOW_SOAK = 30.0
SOAK_MARGIN = 5.0  # seconds past the soak in which a running rollout would have stepped


async def test_a_paused_rollout_signals_nothing_until_resumed(
    fleet: Fleet, database_url: str
) -> None:
    fleet.env["COORDINATOR_EXPLORER_SOAK"] = str(PAUSE_WINDOW_SOAK)
    store = await Store.open(database_url)
    try:
        await serving(store, fleet)
        unknown = coordinator("rollout", "pause", "no-such-rollout", "--reason", "x", env=fleet.env)
        assert unknown.returncode == 1 and "no rollout" in unknown.stderr

        requested = coordinator("shutdown", "--reason", "pause drill", env=fleet.env)
        assert requested.returncode == 0, requested.stderr
        with anyio.fail_after(60):
            while not (found := await store.rollouts(kind=LifecycleKind.SHUTDOWN)):
                await anyio.sleep(0.05)
        rollout_id = found[0].rollout_id
        paused = coordinator("rollout", "pause", rollout_id, "--reason", "hold", env=fleet.env)
        assert paused.returncode == 0, paused.stderr
        held = await store.rollout(rollout_id)
        assert held.status is RolloutStatus.PAUSED
        signalled = [w.index for w in held.waves if w.status is not WaveStatus.PENDING]

        again = coordinator("rollout", "pause", rollout_id, "--reason", "twice", env=fleet.env)
        assert again.returncode == 1 and "only a running rollout" in again.stderr
        retry = coordinator("rollout", "retry", rollout_id, "--reason", "no", env=fleet.env)
        assert retry.returncode == 1

        # Past the first wave's soak (and a gate check): a running rollout would move on.
        first = held.waves[0]
        moved_on_by = (first.signalled_at or store.now()) + first.soak + SOAK_MARGIN
        with anyio.fail_after(PAUSE_WINDOW_SOAK + 2 * SOAK_MARGIN):
            while store.now() < moved_on_by:
                await anyio.sleep(0.5)
        still = await store.rollout(rollout_id)
        assert still.status is RolloutStatus.PAUSED
        assert [w.index for w in still.waves if w.status is not WaveStatus.PENDING] == signalled

        resumed = coordinator("rollout", "resume", rollout_id, "--reason", "go", env=fleet.env)
        assert resumed.returncode == 0, resumed.stderr
        done = await wait_rollout(store, LifecycleKind.SHUTDOWN, deadline=120)
        assert done.status is RolloutStatus.COMPLETED
        assert set((await fleet.wait_exits(deadline=60)).values()) == {0}

        kinds = [c.kind for c in await store.commands()]
        refused = [c for c in await store.commands() if c.status is CommandStatus.REFUSED]
        assert kinds.count(CommandKind.PAUSE) == 2 and len(refused) == 2  # audited, refused
        events = [e.kind for e in await store.events(rollout_id=rollout_id)]
        assert events.count(EventKind.ROLLOUT_PAUSED) == 1
        assert events.count(EventKind.ROLLOUT_RESUMED) == 1
    finally:
        await store.close()


EXPLORER_SOAK = 8.0  # seconds: the explorer's exit lands inside its wave, before its gate


async def test_a_rollout_aborted_by_its_gate_completes_after_retry(
    fleet: Fleet, database_url: str
) -> None:
    fleet.env["COORDINATOR_EXPLORER_SOAK"] = str(EXPLORER_SOAK)
    store = await Store.open(database_url)
    try:
        for occurrence_id in OCCURRENCES:
            fleet.start(occurrence_id)
        with anyio.fail_after(60):
            while not (found := await store.rollouts(kind=LifecycleKind.WAKEUP)):
                await anyio.sleep(0.05)
        rollout_id = found[0].rollout_id
        (explorer,) = found[0].waves[0].members

        # The explorer's process ends during its wave, as `run` does when it cannot serve.
        fleet.processes[explorer].send_signal(signal.SIGTERM)
        assert await fleet.wait_exits_of([explorer], deadline=30) == {explorer: 0}
        held = await store.rollout(rollout_id)
        assert not held.waves[0].status.is_settled, "the explorer's gate ran before it exited"
        aborted = await wait_rollout(store, LifecycleKind.WAKEUP, deadline=60)
        assert aborted.status is RolloutStatus.ABORTED
        assert aborted.abort_reason == "explorer wave failed its health gate"
        assert [w.status for w in aborted.waves] == [
            WaveStatus.FAILED,
            WaveStatus.SKIPPED,
            WaveStatus.SKIPPED,
        ]
        task = await store.task(rollout_id)
        assert task is not None and task.status is TaskStatus.FAILED

        # Fix the cause: the explorer runs again, and serves under the wave it was given.
        # (Its old incarnation left in state work: only a live one counts.)
        fleet.start(explorer)
        await wait_members(
            store,
            lambda ms: any(
                m.occurrence_id == explorer
                and m.state is OccurrenceState.WORK
                and m.stopped_at is None
                for m in ms
            ),
            deadline=60,
            what="the restarted explorer serving",
        )
        retried = coordinator(
            "rollout", "retry", rollout_id, "--reason", "restarted the explorer", env=fleet.env
        )
        assert retried.returncode == 0, retried.stdout + retried.stderr
        assert "retry applied to wakeup" in retried.stdout

        done = await wait_rollout(store, LifecycleKind.WAKEUP, deadline=60)
        assert done.rollout_id == rollout_id and done.status is RolloutStatus.COMPLETED
        assert all(w.status is WaveStatus.HEALTHY for w in done.waves)
        await wait_members(
            store,
            lambda ms: sum(m.state is OccurrenceState.WORK for m in ms) == len(OCCURRENCES),
            deadline=60,
            what="every occurrence serving",
        )
        task = await store.task(rollout_id)
        assert task is not None and task.status is TaskStatus.COMPLETED  # the decision stands

        (command,) = await store.commands(kind=CommandKind.RETRY)
        assert command.status is CommandStatus.ACCEPTED
        assert command.rollout_id == rollout_id
        assert command.reason == "restarted the explorer"
        trail = [
            (e.kind, e.wave)
            for e in await store.events(rollout_id=rollout_id)
            if e.kind != EventKind.DRIVER_ACQUIRED
        ]
        explorer_wave, early, general = WAVE_ORDER
        expected = [
            (EventKind.WAVE_FAILED, explorer_wave),
            (EventKind.ROLLOUT_ABORTED, explorer_wave),
            (EventKind.COMMAND_ACCEPTED, None),
            (EventKind.ROLLOUT_RETRIED, explorer_wave),
            (EventKind.WAVE_HEALTHY, explorer_wave),
            (EventKind.WAVE_SIGNALLED, early),
            (EventKind.WAVE_HEALTHY, early),
            (EventKind.WAVE_SIGNALLED, general),
            (EventKind.WAVE_HEALTHY, general),
            (EventKind.ROLLOUT_COMPLETED, None),
        ]
        positions = [trail.index(step) for step in expected]
        assert positions == sorted(positions), trail
        assert trail.count((EventKind.WAVE_SIGNALLED, explorer_wave)) == 1  # never re-signalled
        await check_fleet_invariants(store)
    finally:
        await store.close()
