"""The deterministic simulator finds real bugs: each defect of ``planted_defects``, planted
alone, is found by the seeded trials within ``SEEDS_TO_FIND[defect]`` seeds from seed 1,
and the unpatched runtime passes the same seeds (so what was found is the defect).

The bound is what the simulator needed when the test was written, with room: run
``python scripts/seeds_to_find.py`` for the figures (seeds to find each defect, from
several starting seeds)."""

from __future__ import annotations

import pytest
from planted_defects import CONFIG, CONFIG_OF, PLANTED

from coordinator.exploration_runs import one_trial
from coordinator.trial_config import TrialConfig, TrialOutcome

SEEDS_TO_FIND = {
    "stale driver view": 40,
    "last wave's driver leaves unrecorded": 60,
    "discovery restarts on takeover": 40,
    "claim ignores lease expiry": 10,
    "decision written without its fencing token": 40,
    "emergency nonce unchecked": 20,
    "wave signalled before its predecessor's gate": 20,
    "shutdown ignores the serving floor": 10,
}


def trial(seed: int, config: TrialConfig = CONFIG) -> TrialOutcome:
    return one_trial(seed, config)


def first_failing(limit: int, config: TrialConfig) -> TrialOutcome | None:
    for seed in range(1, limit + 1):
        outcome = trial(seed, config)
        if not outcome.ok:
            return outcome
    return None


@pytest.mark.parametrize("defect", list(PLANTED))
def test_the_simulator_finds_the_planted_defect(
    defect: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    limit, config = SEEDS_TO_FIND[defect], CONFIG_OF.get(defect, CONFIG)
    PLANTED[defect](monkeypatch)
    found = first_failing(limit, config)
    assert found is not None, f"{defect}: not found within {limit} seeds"
    monkeypatch.undo()  # the same seed, unpatched, passes: what failed was the defect
    clean = trial(found.seed, config)
    assert clean.ok, f"seed {found.seed} fails without the defect too: {clean.violations}"
    with capsys.disabled():
        print(f"\n{defect}: found at seed {found.seed}: {found.violations[0]}")
