"""``shutdown``: ask the fleet for a coordinated shutdown, and optionally follow it."""

from __future__ import annotations

import argparse
import sys

import anyio

from coordinator.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    add_database_flag,
    existing_database_url,
    operator_name,
    refuse,
    settings_from_args,
)
from coordinator.report import describe
from persistence import Store
from schemas import ConfigurationError, DatabaseUnavailable, RolloutStatus

EXIT_TIMEOUT = 4
FOLLOW_POLL = 0.5  # seconds


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "shutdown",
        help="request a coordinated shutdown of the fleet",
        description="Request a coordinated shutdown: one occurrence decides for all; if it "
        "accepts, the fleet leaves in canary waves. With --wait, follow the rollout; exit "
        "0 when it completed, 1 if it was rejected or aborted, 4 on --timeout.",
    )
    add_database_flag(parser)
    parser.add_argument("--reason", required=True, help="why (shown to the deciding agent)")
    parser.add_argument("--wait", action="store_true", help="follow the rollout to its end")
    parser.add_argument(
        "--timeout", type=float, default=None, metavar="SECONDS", help="give up waiting after"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if not args.reason.strip():
        return refuse("shutdown", "--reason must not be empty")
    try:
        url = existing_database_url(args)
        member_ttl = settings_from_args(args).member_ttl
    except ConfigurationError as exc:
        return refuse("shutdown", exc)
    try:
        return anyio.run(_request, url, member_ttl, args)
    except DatabaseUnavailable as exc:
        return refuse("shutdown", exc)


async def _request(url: str, member_ttl: float, args: argparse.Namespace) -> int:
    store = await Store.open(url)
    try:
        requester = f"cli:{operator_name()}"
        task, command = await store.submit_shutdown(args.reason, requested_by=requester)
        if command.accepted:
            print(f"shutdown requested: task {task.task_id} ({args.reason})")
        else:  # recorded as refused; --wait follows the shutdown already under way
            print(command.detail)
        if await store.count_live(member_ttl) == 0:
            print(
                "warning: no live occurrence right now; the request waits for one to decide it",
                file=sys.stderr,
            )
        if not args.wait:
            return EXIT_OK
        if args.timeout is None:
            return await _follow(store, task.task_id)
        with anyio.move_on_after(args.timeout):
            return await _follow(store, task.task_id)
        print(f"timed out after {args.timeout:g} s; the rollout goes on", file=sys.stderr)
        return EXIT_TIMEOUT
    finally:
        await store.close()


async def _follow(store: Store, task_id: str) -> int:
    after = 0
    while True:
        for event in await store.events(after_id=after):
            after = event.event_id
            if task_id in (event.task_id, event.rollout_id):
                line = describe(event)
                if line:
                    print(line.strip(), flush=True)
        found = [r for r in await store.rollouts(limit=5) if r.task_id == task_id]
        if found and found[0].status.is_finished:
            status = found[0].status
            print(f"shutdown rollout {status.value}")
            return EXIT_OK if status is RolloutStatus.COMPLETED else EXIT_FAILED
        await anyio.sleep(FOLLOW_POLL)
