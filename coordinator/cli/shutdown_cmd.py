"""``shutdown``: ask the fleet for a coordinated shutdown, and optionally follow it."""

from __future__ import annotations

import argparse
import sys

import anyio

from coordinator.cli.arguments import add_command, reason_text, seconds
from coordinator.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    add_database_flag,
    existing_database_url,
    operator_name,
    refuse,
    settings_from_args,
)
from coordinator.report import Timeline
from coordinator.terminal_text import printable
from persistence import Store
from schemas import ConfigurationError, DatabaseUnavailable, RolloutStatus

EXIT_TIMEOUT = 4
FOLLOW_POLL = 0.5  # seconds
MAX_TIMEOUT = 7 * 86_400.0  # seconds: a week, longer than any rollout's gates


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "shutdown",
        help="request a coordinated shutdown of the fleet",
        description="Request a coordinated shutdown: one occurrence decides for all; if it "
        "accepts, the fleet leaves in canary waves. A request while a shutdown is already "
        "requested, rolling out or paused is refused (and recorded as a refused command): "
        "exit 1, saying which shutdown is under way. With --wait, follow the rollout; exit "
        "0 when it completed, 1 if it was refused, rejected or aborted, 2 on bad input, 4 "
        "on --timeout.",
        example_lines=(
            'python -m coordinator shutdown --db sqlite:///./fleet.db --reason "maintenance"',
            'python -m coordinator shutdown --reason "new build" --wait --timeout 600',
        ),
    )
    add_database_flag(parser)
    parser.add_argument(
        "--reason", required=True, type=reason_text, help="why (shown to the deciding agent)"
    )
    parser.add_argument("--wait", action="store_true", help="follow the rollout to its end")
    parser.add_argument(
        "--timeout",
        type=seconds(0, MAX_TIMEOUT),
        default=None,
        metavar="SECONDS",
        help="give up waiting after (0 to a week)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
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
        if not command.accepted:  # recorded as refused; nothing else changed
            return refuse(
                "shutdown",
                f"refused: {printable(command.detail or 'a shutdown is under way')} "
                "(see `python -m coordinator status`)",
                EXIT_FAILED,
            )
        print(f"shutdown requested: task {task.task_id} ({printable(args.reason)})")
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
    timeline = Timeline()
    while True:
        for event in await store.events(after_id=after):
            after = event.event_id
            if task_id in (event.task_id, event.rollout_id):
                line = timeline.describe(event)
                if line:
                    print(line.strip(), flush=True)
        found = [r for r in await store.rollouts(limit=5) if r.task_id == task_id]
        if found and found[0].status.is_finished:
            status = found[0].status
            print(f"shutdown rollout {status.value}")
            return EXIT_OK if status is RolloutStatus.COMPLETED else EXIT_FAILED
        await anyio.sleep(FOLLOW_POLL)
