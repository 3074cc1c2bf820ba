"""``simulate --explore``: seeded trials of the real runtime with faults, checked.

The CI block below runs a fixed set of seeds at 9 occurrences with every fault class:
every invariant must hold in every one (the release run is ``--seeds 100000``). A
failing trial names the command that replays it, and the replay fails the same way."""

from __future__ import annotations

import shlex

import pytest
from planted_defects import plant_nonce_unchecked

from coordinator.cli import main
from coordinator.exploration_runs import explore, one_trial
from coordinator.faults import FaultKind
from coordinator.trial_config import TrialConfig

CI_SEEDS = range(1, 41)
"""The CI block: forty schedules of a nine-occurrence fleet, every fault class."""


def test_every_trial_of_the_ci_block_keeps_every_invariant() -> None:
    tally = explore(CI_SEEDS, TrialConfig(occurrences=9), jobs=2)

    assert tally.trials == len(CI_SEEDS)
    assert tally.failures == [], "\n".join(tally.table(2))
    # The block reaches what it claims to: every scenario, faults that struck, restarts.
    assert set(tally.by_scenario) == {"lifecycle", "reject", "emergency"}
    assert {str(k) for k in FaultKind} <= set(tally.faults)
    assert tally.struck > len(CI_SEEDS) and tally.restarts > 0
    assert tally.rollouts["shutdown:completed"] > 0
    assert tally.rollouts["shutdown:rejected"] > 0
    assert tally.rollouts["shutdown:aborted"] > 0


def test_the_same_seed_gives_the_same_trial_byte_for_byte() -> None:
    config = TrialConfig(occurrences=5)
    first = one_trial(7, config)

    assert first.ok, first.violations
    assert first.struck > 0
    assert one_trial(7, config) == first
    assert one_trial(8, config).trail != first.trail


def test_a_failing_trial_prints_the_command_that_replays_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plant_nonce_unchecked(monkeypatch)  # every emergency trial then accepts a replay

    code = main(["simulate", "--explore", "--seeds", "6", "--occurrences", "4", "--jobs", "1"])

    out = capsys.readouterr().out
    assert code == 1, out
    assert "a replayed emergency command was accepted" in out
    replays = [line.split("replay: ", 1)[1] for line in out.splitlines() if "replay: " in line]
    assert replays, out
    words = shlex.split(replays[0])
    assert words[:3] == ["python", "-m", "coordinator"]

    # The replay runs the one seed again and fails the same way, with its audit trail.
    assert main(words[3:]) == 1
    replayed = capsys.readouterr().out
    assert "VIOLATION a replayed emergency command was accepted" in replayed
    assert "audit trail of seed" in replayed


def test_a_passing_run_prints_the_table_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["simulate", "--explore", "--seeds", "3", "--occurrences", "3", "--faults", "crash,pause"]
    )

    out = capsys.readouterr().out
    assert code == 0, out
    assert "Exploring seeds 1 to 3: 3 occurrences, faults crash,pause" in out
    assert "trials/min/core" in out
    assert "broke an invariant" not in out


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--faults", "crash,meteor"], "unknown fault meteor"),
        (["--scenario", "wakeup"], "--explore plays lifecycle, reject, emergency"),
        (["--fail", "explorer"], "without --db or --fail"),
        (["--occurrences", "1"], "at least 2 occurrences"),
    ],
)
def test_bad_explore_arguments_are_refused_with_exit_2(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--explore", *argv]) == 2
    assert problem in capsys.readouterr().err


def test_explore_flags_without_explore_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--seeds", "5"]) == 2
    assert "--seeds apply only with --explore" in capsys.readouterr().err
