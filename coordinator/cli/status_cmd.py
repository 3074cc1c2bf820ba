"""``status``: the occurrences and the rollouts, as a table or JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

import anyio

from coordinator.cli.options import (
    EXIT_OK,
    add_database_flag,
    existing_database_url,
    refuse,
    settings_from_args,
)
from coordinator.fleet_report import collect_status, render
from persistence import Store
from schemas import ConfigurationError, DatabaseUnavailable


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "status",
        help="show the occurrences and the rollouts",
        description="Show the fleet id in force (COORDINATOR_FLEET_ID), every occurrence "
        "(its newest incarnation) and the recent rollouts.",
    )
    add_database_flag(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=10,
        help="how many rollouts, newest first (default 10)",
    )
    parser.set_defaults(handler=handle)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


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
    store = await Store.open(url)
    try:
        return await collect_status(store, member_ttl, limit)
    finally:
        await store.close()
