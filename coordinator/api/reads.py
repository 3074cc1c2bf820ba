"""The routes that only read: open to anyone who can reach the server."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from coordinator.api import metrics
from coordinator.api.bodies import CommandDetail, CommandList, EventPage
from coordinator.api.context import context_of
from coordinator.api.diagnostics import collect_diagnostics
from coordinator.api.params import AfterId, CommandId, EventKinds, RolloutFilter, RolloutId
from coordinator.api.responses import READ, SERVED, errors
from coordinator.fleet_report import collect_status
from schemas import CommandKind, CommandRecord, RolloutRecord

MAX_EVENTS_PAGE = 1000
MAX_STATUS_ROLLOUTS = 100
MAX_COMMANDS_PAGE = 500

router = APIRouter()


@router.get(
    "/v1/status",
    tags=["fleet"],
    summary="occurrences and the newest rollouts",
    responses=errors(*READ),
)
async def status(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_STATUS_ROLLOUTS)] = 10,
) -> dict[str, Any]:
    """The report of `python -m coordinator status --json`: the fleet's id, each
    occurrence (state, alive, last heartbeat) and the newest rollouts with their waves
    and current gate."""
    context = context_of(request)
    report = await collect_status(context.store, context.settings.member_ttl, limit)
    return {"fleet_id": context.settings.fleet_id, **report}


@router.get(
    "/v1/events",
    tags=["fleet"],
    summary="the audit trail, oldest first",
    responses=errors(*READ),
)
async def events(
    request: Request,
    after_id: AfterId = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_PAGE)] = 100,
    rollout_id: RolloutFilter = None,
    kind: EventKinds = [],  # noqa: B006 -- pydantic copies a mutable default for each use
) -> EventPage:
    """Events with `event_id > after_id`, oldest first (the newest last). To follow the
    trail, pass the answer's `next_after_id` as the next `after_id`."""
    found = await context_of(request).store.events(
        after_id=after_id, limit=limit, rollout_id=rollout_id, kinds=tuple(kind)
    )
    return EventPage(events=found, next_after_id=found[-1].event_id if found else after_id)


@router.get("/v1/rollouts/{rollout_id}", tags=["fleet"], responses=errors(404, *READ))
async def rollout(request: Request, rollout_id: RolloutId) -> RolloutRecord:
    """One rollout with its waves; 404 if there is none with this id."""
    return await context_of(request).store.rollout(rollout_id)


@router.get(
    "/v1/commands",
    tags=["commands"],
    summary="operator commands, newest first",
    responses=errors(*READ),
)
async def commands(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_COMMANDS_PAGE)] = 50,
    kind: CommandKind | None = None,
) -> CommandList:
    """Operator commands, newest first. Open to anyone, so `signed` (an emergency
    command's payload and signature as received) is left out: `null` here."""
    found = await context_of(request).store.commands(limit=limit, kind=kind)
    return CommandList(commands=[_unsigned(c) for c in found])


@router.get("/v1/commands/{command_id}", tags=["commands"], responses=errors(404, *READ))
async def command(request: Request, command_id: CommandId) -> CommandDetail:
    """One command and the acknowledgements of the occurrences it stopped (emergency);
    `signed` is left out, as in `GET /v1/commands`."""
    store = context_of(request).store
    found = await store.command(command_id)
    return CommandDetail(command=_unsigned(found), acks=await store.emergency_acks(command_id))


def _unsigned(record: CommandRecord) -> CommandRecord:
    # The open reads never hand out a signed object: whoever holds one could post it
    # again (a replay is refused, but a copy is still a credential) without the token.
    return record.model_copy(update={"signed": None})


@router.get("/v1/diagnostics", tags=["server"], responses=errors(*SERVED))
async def diagnostics(request: Request) -> dict[str, Any]:
    """Versions, database backend and URL (password hidden), engine source, trusted key
    ids and the settings in force, secrets redacted."""
    return await collect_diagnostics(context_of(request))


@router.get(
    "/metrics",
    tags=["server"],
    response_class=Response,
    responses={200: {"content": {metrics.CONTENT_TYPE: {}}}, **errors(*SERVED, 503)},
)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format, computed from the database at each scrape."""
    context = context_of(request)
    records = await metrics.read_records(context.store, context.settings.member_ttl)
    families = metrics.families(records, version=context.version, backend=context.store.backend)
    return Response(metrics.render(families), media_type=metrics.CONTENT_TYPE)
