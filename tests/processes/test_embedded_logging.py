"""An agent that embeds the runtime owns its logging: by default the library prints
nothing (nothing on stdout, which may be the agent's own protocol), and the README's
recipe routes its events into the standard ``logging``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

# One occurrence wakes up alone (explorer wave only) and stops: a whole run's events.
AGENT = textwrap.dedent(
    """
    import json, logging, sys
    import anyio
    from coordinator import OccurrenceRuntime, load_settings
    from schemas import OccurrenceState

    RECIPE = sys.argv[2] == "recipe"
    if RECIPE:
        # The README's recipe, as an agent with logging of its own would write it.
        records = []

        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record)

        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
        logging.getLogger("coordinator").addHandler(Keep())

    async def main():
        settings = load_settings(
            database_url=sys.argv[1],
            occurrence_id="embedded-1",
            agent_occurrence_count=1,
            poll_interval=0.1,
            heartbeat_interval=0.5,
            member_ttl=5,
            lease_ttl=2,
            explorer_soak=0.2,
            health_poll=0.1,
        )
        async with OccurrenceRuntime(settings) as runtime:
            with anyio.fail_after(60):
                await runtime.wait_for(OccurrenceState.WORK)

    anyio.run(main)
    if RECIPE:
        names = [getattr(r, "event_name", None) for r in records]
        fields = next(r.event_fields for r in records if r.event_name == "occurrence_registered")
        print(json.dumps({"names": names, "registered": fields}, default=str))
    """
)


def _agent(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", AGENT, f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}", mode],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},  # no COORDINATOR_* from the test's environment
    )


def test_an_embedded_runtime_prints_nothing_by_default(tmp_path: Path) -> None:
    result = _agent(tmp_path, "default")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""


def test_the_readme_recipe_routes_events_into_stdlib_logging(tmp_path: Path) -> None:
    result = _agent(tmp_path, "recipe")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # stdout holds only what the agent printed
    assert {"occurrence_registered", "task_claimed", "wave_signalled"} <= set(report["names"])
    assert report["registered"]["occurrence_id"] == "embedded-1"
    # basicConfig's handler shows each event by name with its fields.
    assert "INFO:coordinator:occurrence_registered occurrence_id='embedded-1'" in result.stderr
