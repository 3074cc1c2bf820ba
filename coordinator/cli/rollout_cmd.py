"""``rollout pause|resume|abort|retry ROLLOUT_ID``: an operator's hand on one rollout."""

from __future__ import annotations

import argparse
import json
import sys

import anyio

from coordinator.cli.arguments import add_command, reason_text, requester_text, utf8_text
from coordinator.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    add_database_flag,
    existing_database_url,
    operator_name,
    refuse,
)
from coordinator.terminal_text import printable
from persistence import Store
from schemas import (
    CommandRecord,
    ConfigurationError,
    DatabaseUnavailable,
    NotFound,
    RolloutAction,
    WaveStatus,
)
from schemas.kinds import kind_policy

HELP = {
    RolloutAction.PAUSE: "hold a running rollout: no wave is signalled or judged until resumed",
    RolloutAction.RESUME: "go on with a paused rollout; the wave in progress gets back the "
    "time it was held",
    RolloutAction.ABORT: "stop a running or paused rollout for good: no further wave is "
    "signalled (members already signalled stay as they are)",
    RolloutAction.RETRY: "re-run the health gate of the wave that failed, once its cause is "
    "fixed; the rollout goes on from there if it passes",
}


EXAMPLES = (
    'python -m coordinator rollout pause shutdown_3f2a9c1b7d6e --reason "investigating"',
    'python -m coordinator rollout retry wakeup_8c1d0e2f4a5b --reason "fixed the config"',
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "rollout",
        help="pause, resume, abort or retry a rollout",
        description="Steer one rollout. Every action is recorded as an operator command in "
        "the audit trail, also when it is refused. Exit 0 when applied, 1 when refused "
        "(the rollout's state does not allow it, or no such rollout), 2 on bad input.",
        example_lines=EXAMPLES,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in HELP.items():
        sub = add_command(
            actions,
            action.value,
            help=text,
            description=text[0].upper() + text[1:],
            example_lines=EXAMPLES,
        )
        sub.add_argument(
            "rollout_id", metavar="ROLLOUT_ID", type=utf8_text, help="as shown by `status`"
        )
        sub.add_argument(
            "--reason", required=True, type=reason_text, help="why (kept in the audit trail)"
        )
        sub.add_argument(
            "--by", default=None, type=requester_text, help="who asks (default: user@host)"
        )
        sub.add_argument("--json", action="store_true", help="print the command as JSON")
        add_database_flag(sub)
        sub.set_defaults(handler=handle, rollout_action=action)


def handle(args: argparse.Namespace) -> int:
    action: RolloutAction = args.rollout_action
    command = f"rollout {action.value}"
    try:
        url = existing_database_url(args)
    except ConfigurationError as exc:
        return refuse(command, exc)
    try:
        record, not_ready, target = anyio.run(
            _apply, url, args.rollout_id, action, args.by or operator_name(), args.reason
        )
    except NotFound as exc:
        return refuse(command, exc, EXIT_FAILED)
    except DatabaseUnavailable as exc:
        return refuse(command, exc)
    if args.json:
        print(json.dumps(record.model_dump(mode="json", exclude={"signed"}), indent=2))
    if not record.accepted:
        return refuse(command, f"refused: {printable(record.detail or '')}", EXIT_FAILED)
    if not args.json:
        print(f"{printable(record.detail or 'applied')} (command {record.command_id})")
        if action is RolloutAction.RETRY:
            print(retry_note(not_ready, target), file=sys.stderr)
    return EXIT_OK


def retry_note(not_ready: dict[str, str], target: str) -> str:
    """What a retry does not do: it re-runs the gate at once, and an occurrence that
    failed stays ``failed`` until it is restarted."""
    if not_ready:
        who = ", ".join(f"{m} ({state})" for m, state in sorted(not_ready.items()))
        return (
            f"warning: not in {target!r} yet: {who}. The gate checks again now and fails "
            f"again at its first check unless every member of the wave reaches {target!r}: "
            "a failed occurrence stays failed until it is restarted, so restart it (after "
            "fixing the cause) and then retry."
        )
    return "the gate is checked again now; follow it with `python -m coordinator status`"


async def _apply(
    url: str, rollout_id: str, action: RolloutAction, by: str, reason: str
) -> tuple[CommandRecord, dict[str, str], str]:
    """Apply ``action``. For a retry, also which members of the failed wave are not in
    the rollout's target state now (their state, or "gone"), and that target state."""
    store = await Store.open(url)
    try:
        if action is not RolloutAction.RETRY:
            record = await store.control_rollout(rollout_id, action, issued_by=by, reason=reason)
            return record, {}, ""
        before = await store.rollout(rollout_id)
        record = await store.control_rollout(rollout_id, action, issued_by=by, reason=reason)
        target = kind_policy(before.kind).target_state.value
        failed_wave = next((w for w in before.waves if w.status is WaveStatus.FAILED), None)
        if not record.accepted or failed_wave is None:
            return record, {}, target
        newest = {m.occurrence_id: m for m in await store.members()}
        members = failed_wave.members
        gone = {m for m in members if m not in newest or newest[m].stopped_at is not None}
        not_ready = {
            m: "gone" if m in gone else newest[m].state.value
            for m in members
            if m in gone or newest[m].state.value != target
        }
        return record, not_ready, target
    finally:
        await store.close()
