"""The command line as a user runs it: help, and clear errors that change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fleet import coordinator, coordinator_env

pytestmark = pytest.mark.processes


def test_help_lists_the_commands() -> None:
    result = coordinator("--help", env=coordinator_env("sqlite:///unused.db"))
    assert result.returncode == 0
    for command in ("simulate", "run", "status", "shutdown"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--poll-interval", "-1"], "COORDINATOR_POLL_INTERVAL"),
        (["--occurrence-id", "__shared__"], "COORDINATOR_OCCURRENCE_ID"),
        (["--occurrence-id", "bad id!"], "COORDINATOR_OCCURRENCE_ID"),
        (["--db", "mysql://x/y"], "COORDINATOR_DATABASE_URL"),
        (["--early-adopter-fraction", "1.5"], "COORDINATOR_EARLY_ADOPTER_FRACTION"),
        (["--member-ttl", "0.2"], "COORDINATOR_MEMBER_TTL"),  # below the 0.5 s heartbeat
    ],
)
def test_run_refuses_bad_configuration(tmp_path: Path, flags: list[str], named: str) -> None:
    db = tmp_path / "fleet.db"
    result = coordinator("run", *flags, env=coordinator_env(f"sqlite+aiosqlite:///{db}"))
    assert result.returncode == 2
    assert named in result.stderr
    assert not db.exists()  # refused before touching anything


def test_bad_environment_value_is_named(tmp_path: Path) -> None:
    env = coordinator_env(f"sqlite+aiosqlite:///{tmp_path / 'f.db'}", AGENT_OCCURRENCE_COUNT="0")
    result = coordinator("run", env=env)
    assert result.returncode == 2
    assert "AGENT_OCCURRENCE_COUNT" in result.stderr


def test_status_and_shutdown_refuse_a_missing_database(tmp_path: Path) -> None:
    db = tmp_path / "typo.db"
    env = coordinator_env(f"sqlite+aiosqlite:///{db}")
    for args in (["status"], ["shutdown", "--reason", "x"]):
        result = coordinator(*args, env=env)
        assert result.returncode == 2
        assert "no coordinator database" in result.stderr
    assert not db.exists()


def test_shutdown_needs_a_reason(tmp_path: Path) -> None:
    result = coordinator("shutdown", "--reason", "  ", env=coordinator_env("sqlite:///x.db"))
    assert result.returncode == 2
    assert "--reason" in result.stderr


def test_simulate_json_report(tmp_path: Path) -> None:
    env = coordinator_env(
        f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",
        COORDINATOR_EXPLORER_SOAK="2",
        COORDINATOR_EARLY_ADOPTER_SOAK="3",
        COORDINATOR_HEALTH_POLL="0.5",
    )
    result = coordinator(
        "simulate",
        "--occurrences",
        "4",
        "--scenario",
        "reject",
        "--time-scale",
        "4",
        "--json",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["occurrences"] == 4 and report["scenario"] == "reject"
    assert [(r["kind"], r["status"], r["decision_invocations"]) for r in report["rollouts"]] == [
        ("wakeup", "completed", 1),
        ("shutdown", "rejected", 1),
    ]
    wave = report["rollouts"][0]["waves"][0]
    assert set(wave) >= {"group", "members", "status", "started_at", "finished_at"}
    assert set(report["final_states"].values()) == {"work"}
    assert report["min_available_during_shutdown"] is None


def test_simulate_refuses_bad_arguments() -> None:
    env = coordinator_env("sqlite:///unused.db")
    result = coordinator("simulate", "--occurrences", "0", env=env)
    assert result.returncode == 2 and "--occurrences" in result.stderr
    result = coordinator("simulate", "--scenario", "reject", "--fail", "explorer", env=env)
    assert result.returncode == 2 and "--fail" in result.stderr


def test_simulate_refuses_a_database_that_already_holds_a_fleet(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'used.db'}"
    env = coordinator_env(db, COORDINATOR_EXPLORER_SOAK="1", COORDINATOR_EARLY_ADOPTER_SOAK="1")
    args = ["simulate", "--occurrences", "2", "--scenario", "wakeup", "--time-scale", "4"]
    first = coordinator(*args, "--db", db, env=env)
    assert first.returncode == 0, first.stderr
    second = coordinator(*args, "--db", db, "--json", env=env)
    assert second.returncode == 2
    assert "already holds a fleet" in second.stderr
    assert second.stdout == ""


def test_run_reports_a_database_it_cannot_open(tmp_path: Path) -> None:
    missing_dir = tmp_path / "no" / "such" / "dir"
    result = coordinator("run", env=coordinator_env(f"sqlite+aiosqlite:///{missing_dir}/f.db"))
    assert result.returncode == 2
    assert "cannot open the database" in result.stderr
    assert "Traceback" not in result.stderr
    assert not missing_dir.exists()
