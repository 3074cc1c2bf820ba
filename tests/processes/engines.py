"""Decision engines that `run` processes load in tests (COORDINATOR_ENGINE=engines:...).

Each call leaves a mark file ``<task_id>.<pid>`` (content: the occurrence id) in the
folder named by COORDINATOR_TEST_MARKS, so a test can see who is deciding, and when.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio

from coordinator import DecisionRequest, EngineAnswer

STALL = 3600.0  # seconds: "forever" for a test, which kills or pauses the staller


class FirstDeciderStalls:
    """The first occurrence to decide a task stalls; any later one accepts at once."""

    async def decide(self, request: DecisionRequest) -> EngineAnswer:
        marks = Path(os.environ["COORDINATOR_TEST_MARKS"])
        earlier = list(marks.glob(f"{request.task_id}.*"))
        (marks / f"{request.task_id}.{os.getpid()}").write_text(request.occurrence_id)
        if not earlier:
            await anyio.sleep(STALL)
        return EngineAnswer(accept=True, reason="accepted after the first decider stalled")
