"""The OpenAPI document says exactly what the server does: schemathesis, with every check,
against a real ``serve`` over loopback on each backend, finds nothing.

Every check means: no 5xx but the documented 503, no undocumented status, content type,
header or body; everything the schema allows is accepted, everything it forbids refused;
auth is not ignored; methods the schema lacks answer 405. The run is derandomized
(``--generation-deterministic``, which also keeps no example database) and bounded in
examples, so it is the same run every time and takes well under a minute a backend. To
replay it by hand against a running server:

    schemathesis run http://127.0.0.1:8077/openapi.json --checks all \\
        -H "Authorization: Bearer $COORDINATOR_API_TOKEN" --generation-deterministic
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from api_server import ApiServer
from fleet_state import Seeded

pytestmark = pytest.mark.processes

EXAMPLES = 20  # per operation and phase: enough to hit every rule, well under a minute
RUN_DEADLINE = 300.0  # seconds; about 40 s on a 2-core machine with other work running


def schemathesis_command(api: ApiServer) -> list[str]:
    return [
        sys.executable, "-m", "schemathesis.cli", "run", f"{api.base_url}/openapi.json",
        "--checks", "all",
        "--header", f"Authorization: Bearer {api.token}",
        "--max-examples", str(EXAMPLES),
        "--generation-deterministic",  # the same run every time, and no example database
        "--workers", "1",
        "--request-timeout", "30",
        "--no-color",
    ]  # fmt: skip


async def test_schemathesis_with_every_check_finds_nothing(
    api: ApiServer, seeded: Seeded, tmp_path: Path
) -> None:
    workdir = tmp_path / "schemathesis"
    workdir.mkdir()
    with anyio.fail_after(RUN_DEADLINE):
        run = await anyio.run_process(
            schemathesis_command(api), cwd=workdir, check=False, stderr=subprocess.STDOUT
        )
    output = run.stdout.decode(errors="replace")
    assert run.returncode == 0, f"schemathesis found something:\n{output}"
    assert "Operations:       11 selected / 11 total" in output, output
    assert " failed" not in output and "FAILURES" not in output, output
