"""``status``: the occurrences and the rollouts, as a table or JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

import anyio

from coordinator.cli.arguments import add_command, bounded_int
from coordinator.cli.options import (
    EXIT_OK,
    add_database_flag,
    existing_database_url,
    may_write,
    refuse,
    settings_from_args,
)
from coordinator.fleet_report import collect_status, render
from persistence import Store
from schemas import ConfigurationError, DatabaseUnavailable


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "status",
        help="show the occurrences and the rollouts",
        description="Show the fleet id in force (COORDINATOR_FLEET_ID), every occurrence "
        "(its newest incarnation) and the recent rollouts; for a rollout in progress, the "
        "current wave, what its gate waits for, and the seconds to its next check and to "
        "its timeout. Needs only read access to the database (with write access, it also "
        "concludes a shutdown nobody is left to finish).",
        example_lines=(
            "python -m coordinator status --db sqlite:///./fleet.db",
            "python -m coordinator status --json | jq '.rollouts[0].current_wave'",
        ),
    )
    add_database_flag(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--limit",
        type=bounded_int(1, MAX_LIMIT),
        default=10,
        help="how many rollouts, newest first (default 10)",
    )
    parser.set_defaults(handler=handle)


MAX_LIMIT = 10_000


def handle(args: argparse.Namespace) -> int:
    try:
        url = existing_database_url(args)
        settings = settings_from_args(args)
    except ConfigurationError as exc:
        return refuse("status", exc)
    try:
        report = anyio.run(_collect, url, settings.member_ttl, args.limit)
    except DatabaseUnavailable as exc:
        return refuse("status", exc)
    report = {"fleet_id": settings.fleet_id, **report}
    print(json.dumps(report, indent=2) if args.json else render(report))
    return EXIT_OK


async def _collect(url: str, member_ttl: float, limit: int) -> dict[str, Any]:
    # Reading needs no write access; with it, status also concludes abandoned shutdowns.
    store = await Store.open(url, read_only=not may_write(url))
    try:
        return await collect_status(store, member_ttl, limit)
    finally:
        await store.close()
