"""The routes that change the fleet. Each is guarded by the bearer token (``GuardedRoute``)
and recorded: a refused command is stored with its reason and changes nothing else."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Security

from coordinator.api.auth import GuardedRoute, bearer_scheme
from coordinator.api.bodies import (
    AuthCheck,
    CommandAnswer,
    RolloutActionBody,
    ShutdownAccepted,
    ShutdownBody,
)
from coordinator.api.context import context_of
from coordinator.api.errors import ApiError
from coordinator.api.params import RolloutId
from coordinator.api.responses import (
    EMERGENCY_422,
    EMERGENCY_INVALID,
    EMERGENCY_REFUSED,
    MUTATE,
    SERVED,
    errors,
)
from coordinator.logs import get_logger
from schemas import (
    CommandRecord,
    RolloutAction,
    SignedCommand,
)

log = get_logger("coordinator.api")

router = APIRouter(route_class=GuardedRoute, dependencies=[Security(bearer_scheme)])


def issuer(request: Request) -> str:
    """Who a command is recorded as coming from: the API and the client's address."""
    return f"api:{request.client.host if request.client else 'unknown'}"


@router.get("/v1/auth", tags=["server"], responses=errors(*SERVED, 401, 403))
async def auth_check(request: Request) -> AuthCheck:
    """Whether the bearer token is accepted, without changing anything (`smoke --token`)."""
    return AuthCheck(authenticated=True, read_only=context_of(request).access.read_only)


@router.post("/v1/shutdown", status_code=202, tags=["commands"], responses=errors(409, *MUTATE))
async def request_shutdown(request: Request, body: ShutdownBody) -> ShutdownAccepted:
    """Ask the fleet for a coordinated shutdown: one occurrence decides for all and, if
    it accepts, the fleet leaves in canary waves. 409 while a shutdown is already
    requested or rolling out."""
    requester = issuer(request)
    if body.requested_by:
        requester = f"{body.requested_by} via {requester}"
    store = context_of(request).store
    task, command = await store.submit_shutdown(body.reason, requested_by=requester)
    _answer(command, refused_with=409, task_id=task.task_id)
    return ShutdownAccepted(
        task=task, message=f"shutdown requested: task {task.task_id}; one occurrence decides"
    )


@router.post(
    "/v1/rollouts/{rollout_id}/{action}",
    tags=["commands"],
    responses=errors(404, 409, *MUTATE),
)
async def control_rollout(
    request: Request, rollout_id: RolloutId, action: RolloutAction, body: RolloutActionBody
) -> CommandAnswer:
    """Pause, resume, abort, or retry (re-run the failed wave's gate of an aborted
    rollout). 404 for an unknown rollout; 409, recorded, when its state does not allow
    the action."""
    record = await context_of(request).store.control_rollout(
        rollout_id, action, issued_by=issuer(request), reason=body.reason
    )
    _answer(record, refused_with=409)
    return CommandAnswer(command=record, message=record.detail)


@router.post(
    "/v1/emergency-shutdown",
    status_code=202,
    tags=["commands"],
    responses=errors(
        *MUTATE, invalid=EMERGENCY_422, s403=EMERGENCY_REFUSED, s422=EMERGENCY_INVALID
    ),
)
async def emergency_shutdown(request: Request, body: SignedCommand) -> CommandAnswer:
    """Stop now, without a decision or waves: the body is a command signed with a key in
    `COORDINATOR_TRUSTED_KEYS` (`payload`, `signature`, `key_id`) for this fleet (its
    `audience` is `COORDINATOR_FLEET_ID`). A command that is unsigned, forged, for another
    fleet, expired, from the future or replayed is refused with 403 and the refusal is
    recorded; it changes nothing else, and no occurrence acts on it. A valid command
    naming an occurrence that never joined the fleet is 422 `unknown_target`, and nothing
    is recorded. Follow the acknowledgements with `GET /v1/commands/{command_id}`."""
    context = context_of(request)
    record = await context.store.submit_emergency(
        body, issued_by=issuer(request), verify=context.verifier
    )
    _answer(record, refused_with=403, prefix="emergency command refused: ")
    return CommandAnswer(command=record, message=record.detail)


def _answer(record: CommandRecord, *, refused_with: int, prefix: str = "", **details: Any) -> None:
    """Log the store's verdict on a command; raise the error answer if it was refused
    (the refusal is already recorded: the store wrote it with the verdict)."""
    log.info(
        "api_command",
        command_id=record.command_id,
        kind=record.kind.value,
        status=record.status.value,
        refusal=record.refusal,
        rollout_id=record.rollout_id,
        issued_by=record.issued_by,
    )
    if not record.accepted:
        raise ApiError(
            refused_with,
            record.refusal or "refused",
            prefix + record.detail,
            details={**details, "command": record.model_dump(mode="json")},
        )
