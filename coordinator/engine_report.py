"""Which decision engine each occurrence loaded, as ``status``, ``/v1/status`` and
``/v1/diagnostics`` show it, and the rule ``smoke --expect-engine`` checks it with."""

from __future__ import annotations

from typing import Any

from schemas import BUILTIN_ENGINE_NAME, EngineIdentity, EngineKind, OccurrenceRecord

ANY_EXTERNAL = "external"
"""``--expect-engine external``: any engine of the agent's own that loaded."""
BUILTIN = "builtin"
"""``--expect-engine builtin`` (or ``builtin:accept``): the built-in engine."""


def engine_entry(member: OccurrenceRecord) -> dict[str, Any]:
    """``{"kind", "name", "error"}`` of the engine ``member`` recorded when it registered."""
    return {
        "kind": member.engine_kind.value,
        "name": member.engine_name,
        "error": member.engine_error,
    }


def engine_mismatch(found: EngineIdentity | None, expected: str) -> str | None:
    """Why an occurrence that recorded ``found`` (None: nothing recorded) does not run
    the engine ``expected`` (``builtin``, ``external`` or a ``module:attr``); None when it
    does. An occurrence whose named engine failed to load never matches: it runs the
    built-in engine only because the one it was configured with is broken."""
    if found is None:
        return "recorded no engine (registered before engines were recorded, or not by a runtime)"
    if found.error is not None:
        return f"runs {found.name} because its COORDINATOR_ENGINE did not load: {found.error}"
    if expected in (BUILTIN, BUILTIN_ENGINE_NAME):
        matches = found.kind is EngineKind.BUILTIN
    elif expected == ANY_EXTERNAL:
        matches = found.kind is EngineKind.EXTERNAL
    else:
        matches = found.kind is EngineKind.EXTERNAL and found.name == expected
    return None if matches else f"loaded {found.kind.value} engine {found.name}"
