"""``simulate --seed``: the real runtime of every occurrence, on virtual time with a seeded
schedule and inline SQLite. One seed gives one run, byte for byte; every seed of the
block below must give a fleet that decides each task once and rolls it out in order.

No setting is stretched for a busy machine here: on virtual time a starved event loop
cannot make a heartbeat late, so the defaults run as an operator would set them."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

from coordinator.simulation import SimulationConfig, simulate
from coordinator.virtual_time import run_seeded
from schemas import CanaryGroup

SEEDS = range(1, 9)
"""The CI block: eight schedules of a three-occurrence lifecycle."""


def seeded(seed: int, **config: Any) -> dict[str, Any]:
    settings = SimulationConfig(seed=seed, **config)
    return run_seeded(lambda: simulate(settings), seed)


def text(report: dict[str, Any]) -> str:
    return json.dumps(report, sort_keys=True)


def check_lifecycle(report: dict[str, Any], seed: int) -> None:
    where = f"seed {seed}: {json.dumps(report['rollouts'], indent=1)}"
    assert [r["kind"] for r in report["rollouts"]] == ["wakeup", "shutdown"], where
    for rollout in report["rollouts"]:
        assert rollout["status"] == "completed", where
        assert rollout["decision_invocations"] == 1, where  # one decision per task
        waves = [w for w in rollout["waves"] if w["members"]]
        assert all(w["status"] == "healthy" for w in waves), where
        for earlier, later in pairwise(waves):  # in order
            assert later["started_at"] >= earlier["finished_at"], where
        planned = sorted(m for w in rollout["waves"] for m in w["members"])
        assert planned == sorted(report["final_states"]), where  # everyone, once
    assert set(report["final_states"].values()) == {"shutdown"}, where


def test_the_same_seed_gives_the_same_run_byte_for_byte() -> None:
    first = seeded(11, occurrences=5)
    check_lifecycle(first, 11)
    assert text(seeded(11, occurrences=5)) == text(first)


def test_every_seed_of_the_block_runs_a_correct_lifecycle() -> None:
    plans = set()
    for seed in SEEDS:
        report = seeded(seed, occurrences=3)
        check_lifecycle(report, seed)
        # Who decided, and who went in which wave: the schedule's doing, not the ids'.
        plans.add(
            tuple(
                (r["decided_by"], *(tuple(w["members"]) for w in r["waves"]))
                for r in report["rollouts"]
            )
        )
    assert len(plans) > 1, "every seed gave the same plans: the seed does not reach them"


def test_a_failing_wave_aborts_the_rollout_on_virtual_time_too() -> None:
    report = seeded(3, occurrences=4, fail=CanaryGroup.EARLY_ADOPTER, scenario="wakeup")
    (wakeup,) = report["rollouts"]
    assert wakeup["status"] == "aborted"
    assert wakeup["abort_reason"] == "early_adopter wave failed its health gate"
    statuses = [w["status"] for w in wakeup["waves"]]
    assert statuses == ["healthy", "failed", "skipped"], statuses
