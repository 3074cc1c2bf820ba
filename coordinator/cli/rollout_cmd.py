"""``rollout pause|resume|abort|retry ROLLOUT_ID``: an operator's hand on one rollout."""

from __future__ import annotations

import argparse
import json

import anyio

from coordinator.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    add_database_flag,
    existing_database_url,
    operator_name,
    refuse,
)
from persistence import Store
from schemas import (
    CommandRecord,
    ConfigurationError,
    DatabaseUnavailable,
    NotFound,
    RolloutAction,
)

HELP = {
    RolloutAction.PAUSE: "hold a running rollout: no wave is signalled or judged until resumed",
    RolloutAction.RESUME: "go on with a paused rollout; the wave in progress gets back the "
    "time it was held",
    RolloutAction.ABORT: "stop a running or paused rollout for good: no further wave is "
    "signalled (members already signalled stay as they are)",
    RolloutAction.RETRY: "re-run the health gate of the wave that failed, once its cause is "
    "fixed; the rollout goes on from there if it passes",
}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "rollout",
        help="pause, resume, abort or retry a rollout",
        description="Steer one rollout. Every action is recorded as an operator command in "
        "the audit trail, also when it is refused. Exit 0 when applied, 1 when refused "
        "(the rollout's state does not allow it, or no such rollout), 2 on bad input.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in HELP.items():
        sub = actions.add_parser(action.value, help=text, description=text[0].upper() + text[1:])
        sub.add_argument("rollout_id", metavar="ROLLOUT_ID", help="as shown by `status`")
        sub.add_argument("--reason", required=True, help="why (kept in the audit trail)")
        sub.add_argument("--by", default=None, help="who asks (default: user@host)")
        sub.add_argument("--json", action="store_true", help="print the command as JSON")
        add_database_flag(sub)
        sub.set_defaults(handler=handle, rollout_action=action)


def handle(args: argparse.Namespace) -> int:
    action: RolloutAction = args.rollout_action
    command = f"rollout {action.value}"
    if not args.reason.strip():
        return refuse(command, "--reason must not be empty")
    try:
        url = existing_database_url(args)
    except ConfigurationError as exc:
        return refuse(command, exc)
    try:
        record = anyio.run(
            _apply, url, args.rollout_id, action, args.by or operator_name(), args.reason.strip()
        )
    except NotFound as exc:
        return refuse(command, exc, EXIT_FAILED)
    except DatabaseUnavailable as exc:
        return refuse(command, exc)
    if args.json:
        print(json.dumps(record.model_dump(mode="json", exclude={"signed"}), indent=2))
    if not record.accepted:
        return refuse(command, f"refused: {record.detail}", EXIT_FAILED)
    if not args.json:
        print(f"{record.detail} (command {record.command_id})")
    return EXIT_OK


async def _apply(
    url: str, rollout_id: str, action: RolloutAction, by: str, reason: str
) -> CommandRecord:
    store = await Store.open(url)
    try:
        return await store.control_rollout(rollout_id, action, issued_by=by, reason=reason)
    finally:
        await store.close()
