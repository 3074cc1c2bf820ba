"""The smoke check of a running control API: is it up, reading the right database,
exporting its metrics, and (with a token) accepting that token?

Each check reads only; none changes the fleet. Every problem is reported with what was
expected and what came back, and the checks go on after a failed one, so one run names
everything that is off.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from coordinator.engine_report import engine_mismatch
from schemas import EngineIdentity, EngineKind

REQUIRED_METRICS = (
    "coordinator_up",
    "coordinator_info",
    "coordinator_occurrences",
    "coordinator_rollouts",
    "coordinator_wave_duration_seconds",
    "coordinator_decision_latency_seconds",
    "coordinator_emergency_ack_latency_seconds",
    "coordinator_commands",
    "coordinator_commands_refused",
)
REQUIRED_ROUTES = ("/v1/status", "/v1/shutdown", "/v1/emergency-shutdown", "/metrics")
_SHOWN_BODY = 200  # characters of an unexpected answer quoted in a finding


@dataclass
class Check:
    name: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "problems": self.problems, "notes": self.notes}


@dataclass(frozen=True)
class Expectations:
    backend: str | None = None
    min_alive: int = 0
    token: str | None = None
    engine: str | None = None
    """``builtin``, ``external`` or a ``module:attr``: what every live occurrence loaded."""


class Unreachable(Exception):
    """The server did not answer at all: no further check can tell anything."""


def run_checks(client: httpx.Client, expect: Expectations) -> list[Check]:
    """Every check, in order; raises ``Unreachable`` if the server cannot be connected to."""
    found: dict[str, Any] = {}
    checks: list[Callable[[], Check]] = [
        lambda: _status(client, expect, found),
        lambda: _diagnostics(client, expect, found),
        lambda: _metrics(client, found),
        lambda: _openapi(client),
    ]
    if expect.token is not None:
        token = expect.token
        checks.append(lambda: _token(client, token))
    return [check() for check in checks]


def _get(client: httpx.Client, check: Check, path: str, **kwargs: Any) -> httpx.Response | None:
    try:
        response = client.get(path, **kwargs)
    except httpx.ConnectError as exc:
        raise Unreachable(f"cannot connect to {client.base_url}: {exc}") from exc
    except httpx.HTTPError as exc:
        check.problems.append(f"GET {path} failed: {exc or type(exc).__name__}")
        return None
    if response.status_code != 200:
        check.problems.append(
            f"GET {path} answered {response.status_code}: {response.text[:_SHOWN_BODY]}"
        )
        return None
    return response


def _json(check: Check, response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        check.problems.append(f"{response.url.path} did not answer JSON")
        return None
    if not isinstance(body, dict):
        check.problems.append(f"{response.url.path} answered {type(body).__name__}, not an object")
        return None
    return body


def _status(client: httpx.Client, expect: Expectations, found: dict[str, Any]) -> Check:
    check = Check("status")
    response = _get(client, check, "/v1/status")
    body = _json(check, response) if response else None
    if body is None:
        return check
    occurrences, rollouts = body.get("occurrences"), body.get("rollouts")
    if not isinstance(occurrences, list) or not isinstance(rollouts, list):
        check.problems.append("the status has no 'occurrences' and 'rollouts' lists")
        return check
    alive = [o for o in occurrences if isinstance(o, dict) and o.get("alive")]
    found["occurrences"] = len(occurrences)
    states = Counter(str(o.get("state")) for o in alive)
    by_state = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    check.notes.append(
        f"{len(occurrences)} occurrence(s), {len(alive)} alive"
        + (f" ({by_state})" if by_state else "")
        + f"; {len(rollouts)} recent rollout(s)"
    )
    if len(alive) < expect.min_alive:
        check.problems.append(
            f"{len(alive)} occurrence(s) alive, expected at least {expect.min_alive}"
        )
    running = [
        r for r in rollouts if isinstance(r, dict) and r.get("status") in ("running", "paused")
    ]
    for rollout in running:
        check.notes.append(
            f"{rollout.get('kind')} rollout {rollout.get('rollout_id')} is {rollout.get('status')}"
        )
    return check


def _diagnostics(client: httpx.Client, expect: Expectations, found: dict[str, Any]) -> Check:
    check = Check("diagnostics")
    response = _get(client, check, "/v1/diagnostics")
    body = _json(check, response) if response else None
    if response is None or body is None:
        return check
    database = body.get("database") or {}
    backend = database.get("backend")
    found["backend"] = backend
    version = (body.get("coordinator") or {}).get("version")
    check.notes.append(
        f"coordinator {version}, database {backend} at {database.get('url')}, "
        f"{(body.get('emergency') or {}).get('trusted_keys', 0)} trusted key(s), "
        f"engine {(body.get('engine') or {}).get('source')}"
    )
    if database.get("reachable") is not True:
        check.problems.append(f"the database does not answer: {database.get('error', 'unknown')}")
    if expect.backend is not None and backend != expect.backend:
        check.problems.append(f"the backend is {backend}, expected {expect.backend}")
    if expect.token and expect.token in response.text:
        check.problems.append("the diagnostics show the API token: it must be redacted")
    if expect.engine is not None:
        _check_engines(check, body.get("engine") or {}, expect.engine)
    return check


def _check_engines(check: Check, engine: dict[str, Any], expected: str) -> None:
    """One problem per live occurrence that loaded something other than ``expected``."""
    entries = engine.get("occurrences")
    if not isinstance(entries, list):
        error = engine.get("occurrences_error")
        check.problems.append(
            f"cannot check the engines: {error}"
            if error
            else "the diagnostics list no occurrence's engine (a server from before engine "
            "diagnostics)"
        )
        return
    alive = [e for e in entries if isinstance(e, dict) and e.get("alive")]
    if not alive:
        check.problems.append(f"no live occurrence to check for engine {expected}")
        return
    off = [
        f"{entry.get('occurrence_id')} {reason}, expected {expected}"
        for entry in alive
        if (reason := engine_mismatch(_identity(entry), expected)) is not None
    ]
    check.problems += off
    if not off:
        check.notes.append(f"engine {expected} on all {len(alive)} live occurrence(s)")


def _identity(entry: dict[str, Any]) -> EngineIdentity | None:
    if entry.get("kind") in (None, EngineKind.UNKNOWN.value) or entry.get("name") is None:
        return None
    try:
        return EngineIdentity(kind=entry["kind"], name=entry["name"], error=entry.get("error"))
    except ValidationError:
        return None  # a kind this smoke does not know: not the engine it expects


def _metrics(client: httpx.Client, found: dict[str, Any]) -> Check:
    check = Check("metrics")
    response = _get(client, check, "/metrics")
    if response is None:
        return check
    if not response.headers.get("content-type", "").startswith("text/plain"):
        check.problems.append(f"/metrics is {response.headers.get('content-type')}, not text/plain")
    try:
        families = {f.name: f for f in text_string_to_metric_families(response.text)}
    except ValueError as exc:
        check.problems.append(f"/metrics is not Prometheus text: {exc}")
        return check
    missing = [name for name in REQUIRED_METRICS if name not in families]
    if missing:
        check.problems.append("missing metric(s): " + ", ".join(missing))
    up = (
        [s.value for s in families["coordinator_up"].samples]
        if "coordinator_up" in families
        else []
    )
    if up != [1.0]:
        check.problems.append(f"coordinator_up is {up or 'absent'}, expected 1")
    if "coordinator_info" in families and found.get("backend"):
        backends = {s.labels.get("backend") for s in families["coordinator_info"].samples}
        if backends != {found["backend"]}:
            check.problems.append(
                f"coordinator_info says backend {backends}, diagnostics {found['backend']}"
            )
    if "coordinator_occurrences" in families and "occurrences" in found:
        counted = sum(s.value for s in families["coordinator_occurrences"].samples)
        if counted != found["occurrences"]:
            # Not a failure: an occurrence may have registered between the two reads.
            check.notes.append(
                f"metrics count {counted:g} occurrence(s), status {found['occurrences']}"
            )
    check.notes.append(f"{len(families)} metric families")
    return check


def _openapi(client: httpx.Client) -> Check:
    check = Check("openapi")
    response = _get(client, check, "/openapi.json")
    body = _json(check, response) if response else None
    if body is None:
        return check
    paths = body.get("paths") or {}
    missing = [path for path in REQUIRED_ROUTES if path not in paths]
    if missing:
        check.problems.append("the schema lacks route(s): " + ", ".join(missing))
    check.notes.append(f"{len(paths)} routes documented")
    return check


def _token(client: httpx.Client, token: str) -> Check:
    check = Check("token")
    try:
        response = client.get("/v1/auth", headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        check.problems.append(f"GET /v1/auth failed: {exc}")
        return check
    if response.status_code == 200:
        check.notes.append("the token is accepted on mutating routes")
    elif response.status_code == 401:
        check.problems.append(
            "the token is rejected (401): it is not the server's COORDINATOR_API_TOKEN"
        )
    elif response.status_code == 403:
        check.problems.append("the server is read-only (403): it accepts no command")
    else:
        check.problems.append(
            f"GET /v1/auth answered {response.status_code}: {response.text[:_SHOWN_BODY]}"
        )
    return check
