"""One verdict per command, with a real ``serve`` and a real ``run`` occurrence: what the
API answered is what the fleet does. A command the API refused is never obeyed, even by
an occurrence that trusts the key it was signed with; a command signed for another fleet
is refused by the API and by the occurrence alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from api_server import ApiServer, Signer, server_env, start_api
from fleet import Fleet, coordinator, coordinator_env, wait_members

from persistence import Store
from schemas import AckVerdict, CommandStatus, EmergencyAck, OccurrenceState

pytestmark = pytest.mark.processes

ROUTE = "/v1/emergency-shutdown"
MEMBER = "occurrence-1"
FLEET = "fleet-b"
EXIT_EMERGENCY = 3
WAKE_DEADLINE = 120.0  # seconds for one process to start and pass its wakeup
ACT_DEADLINE = 60.0  # seconds for the occurrence to answer one command
REFUSED_ROUNDS = 3  # refused commands in a row, each answered by a separate check
BEATS_AFTER = 3  # heartbeats the occurrence must show after its last answer


@pytest.fixture
def fleet(tmp_path: Path, database_url: str, signer: Signer) -> Iterator[Fleet]:
    """One occurrence of fleet ``fleet-b`` that trusts the operator's key."""
    running = Fleet(
        tmp_path,
        coordinator_env(
            database_url,
            AGENT_OCCURRENCE_COUNT="1",
            COORDINATOR_TRUSTED_KEYS=signer.public_text,
            COORDINATOR_FLEET_ID=FLEET,
        ),
    )
    try:
        yield running
    finally:
        running.stop_all()


async def serving(db: Store, fleet: Fleet) -> None:
    fleet.start(MEMBER)
    await wait_members(
        db,
        lambda ms: any(m.state is OccurrenceState.WORK and m.stopped_at is None for m in ms),
        deadline=WAKE_DEADLINE,
        what=f"{MEMBER} serving",
    )


async def answer_of(db: Store, fleet: Fleet, command_id: str) -> EmergencyAck:
    """The occurrence's acknowledgement of ``command_id``, once it has one."""
    with anyio.fail_after(ACT_DEADLINE):
        while not (acks := await db.emergency_acks(command_id)):
            await anyio.sleep(0.1)
    (ack,) = acks
    return ack


async def still_serving_after(db: Store, fleet: Fleet, since: float) -> None:
    """The occurrence lives on: ``BEATS_AFTER`` heartbeats after ``since``, in ``work``."""
    interval = float(fleet.env["COORDINATOR_HEARTBEAT_INTERVAL"])
    await wait_members(
        db,
        lambda ms: any(
            m.state is OccurrenceState.WORK
            and m.stopped_at is None
            and m.last_heartbeat_at >= since + BEATS_AFTER * interval
            for m in ms
        ),
        deadline=ACT_DEADLINE,
        what=f"{MEMBER} heartbeating in work after its answers",
    )
    assert fleet.processes[MEMBER].poll() is None, fleet.log_of(MEMBER)


async def test_a_command_the_api_refused_is_not_obeyed_by_an_occurrence_trusting_its_key(
    fleet: Fleet, database_url: str, db: Store, signer: Signer, tmp_path: Path
) -> None:
    await serving(db, fleet)
    # The server trusts no key at all: every emergency command is refused with unknown_key.
    api = await start_api(tmp_path / "api", server_env(database_url, COORDINATOR_FLEET_ID=FLEET))
    try:
        last_answer = await _refused_rounds(api, db, fleet, signer)
    finally:
        assert api.stop() == 0
    await still_serving_after(db, fleet, last_answer)

    # The control case: the same key, through an issuer that trusts it, stops it at once.
    issued = coordinator(
        *("emergency-shutdown", "--reason", "control", "--key", str(tmp_path / "operator")),
        *("--target", MEMBER, "--wait", "--fleet-id", FLEET),
        env={**fleet.env},
    )
    assert issued.returncode == 0, issued.stdout + issued.stderr
    assert await fleet.wait_exits(deadline=ACT_DEADLINE) == {MEMBER: EXIT_EMERGENCY}


async def _refused_rounds(api: ApiServer, db: Store, fleet: Fleet, signer: Signer) -> float:
    """Post refused commands one after another; each must be answered ``refused`` by a
    fresh check of the occurrence. Returns the time of the last answer."""
    acked_at = 0.0
    async with api.authorized() as client:
        for round_ in range(REFUSED_ROUNDS):
            targets = [MEMBER] if round_ % 2 else []  # targeted, and for the whole fleet
            command = signer.command(f"refused {round_}", targets, audience=FLEET)
            response = await client.post(ROUTE, json=command.model_dump())
            assert response.status_code == 403, response.text
            assert response.json()["error"] == "unknown_key"
            command_id = response.json()["details"]["command"]["command_id"]

            ack = await answer_of(db, fleet, command_id)
            assert ack.verdict is AckVerdict.REFUSED, (ack, fleet.log_of(MEMBER))
            assert ack.detail.startswith("unknown_key: ")
            recorded = await db.command(command_id)
            assert (recorded.status, recorded.refusal) == (CommandStatus.REFUSED, "unknown_key")
            assert fleet.processes[MEMBER].poll() is None, fleet.log_of(MEMBER)
            acked_at = ack.acked_at
    return acked_at


async def test_a_command_signed_for_another_fleet_is_refused_by_the_api_and_the_occurrence(
    fleet: Fleet, database_url: str, db: Store, signer: Signer, tmp_path: Path
) -> None:
    await serving(db, fleet)
    elsewhere = signer.command("stop fleet a", [MEMBER], audience="fleet-a")
    api = await start_api(
        tmp_path / "api",
        server_env(
            database_url, COORDINATOR_FLEET_ID=FLEET, COORDINATOR_TRUSTED_KEYS=signer.public_text
        ),
    )
    try:
        async with api.authorized() as client:
            response = await client.post(ROUTE, json=elsewhere.model_dump())
    finally:
        assert api.stop() == 0
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "wrong_audience"
    by_api = await answer_of(db, fleet, response.json()["details"]["command"]["command_id"])
    assert by_api.verdict is AckVerdict.REFUSED

    # Recorded by an issuer that verifies nothing, the occurrence judges it itself: the
    # nonce is new to this database, the signature good, the audience not this fleet's.
    another = signer.command("stop fleet a again", [MEMBER], audience="fleet-a")
    pending = await db.submit_emergency(another, issued_by="replayer")
    assert pending.status is CommandStatus.PENDING
    by_occurrence = await answer_of(db, fleet, pending.command_id)
    assert by_occurrence.verdict is AckVerdict.REFUSED
    settled = await db.command(pending.command_id)
    assert (settled.status, settled.refusal) == (CommandStatus.REFUSED, "wrong_audience")
    await still_serving_after(db, fleet, by_occurrence.acked_at)
