"""``emergency-shutdown``: a signed order that stops occurrences now, bypassing the
decision and the canary waves. With ``--wait``, who acknowledged, who did not, and how
long each took from the command's recording to its acknowledgement."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import anyio
from pydantic import ValidationError

from coordinator.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    add_database_flag,
    existing_database_url,
    operator_name,
    refuse,
    settings_from_args,
)
from coordinator.emergency import make_verifier
from coordinator.signing import load_private_key, new_command, sign
from persistence import Store
from schemas import (
    AckVerdict,
    CommandRecord,
    CommandStatus,
    ConfigurationError,
    DatabaseUnavailable,
    EmergencyAck,
    OccurrenceRecord,
    Settings,
    SignedCommand,
)

EXIT_TIMEOUT = 4
WAIT_POLL = 0.05  # seconds between reads of the acknowledgements


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "emergency-shutdown",
        help="stop occurrences now with a signed command (no decision, no waves)",
        description="Sign an emergency shutdown with an Ed25519 private key and record it. "
        "Every targeted occurrence verifies it against COORDINATOR_TRUSTED_KEYS, calls "
        "on_emergency_stop, acknowledges and exits (run exits with code 3). A forged, "
        "unsigned, expired or replayed command changes nothing and is recorded as refused. "
        "Exit 0 when recorded (with --wait: when every target stopped), 1 when refused or a "
        "target refused, 2 on bad input, 4 when --wait timed out.",
    )
    add_database_flag(parser)
    parser.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    parser.add_argument("--key", required=True, metavar="PRIVATE_KEY", help="from keys generate")
    parser.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="ID",
        help="an occurrence to stop (repeat for more; default: the whole fleet)",
    )
    parser.add_argument("--wait", action="store_true", help="wait for the acknowledgements")
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long --wait waits (default 30)",
    )
    parser.add_argument("--by", default=None, help="who asks (default: user@host)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    command = "emergency-shutdown"
    try:
        url = existing_database_url(args)
        settings = settings_from_args(args)
        key = load_private_key(args.key)
        order = new_command(args.reason, args.target, now=time.time())
    except ConfigurationError as exc:
        return refuse(command, exc)
    except ValidationError as exc:
        problem = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        return refuse(command, problem)
    signed = sign(order, key)
    try:
        return anyio.run(_issue, url, settings, signed, args)
    except DatabaseUnavailable as exc:
        return refuse(command, exc)


async def _issue(url: str, settings: Settings, signed: SignedCommand, args: Any) -> int:
    # Without trusted keys here, the first occurrence to see the command verifies it.
    verify = make_verifier(settings) if settings.trusted_keys else None
    store = await Store.open(url, server_time=True)
    try:
        expected = _targets(await store.members(), args.target, store.now(), settings)
        record = await store.submit_emergency(
            signed, issued_by=args.by or operator_name(), verify=verify
        )
        if record.status is CommandStatus.REFUSED:
            _report(record, [], expected, args.json)
            return refuse(
                "emergency-shutdown", f"refused ({record.refusal}): {record.detail}", EXIT_FAILED
            )
        if not args.wait:
            _report(record, [], expected, args.json)
            return EXIT_OK
        acks, timed_out = await _wait(store, record.command_id, expected, args.timeout)
        record = await store.command(record.command_id)
        _report(record, acks, expected, args.json)
        if record.status is CommandStatus.REFUSED:
            return EXIT_FAILED
        if any(a.verdict is AckVerdict.REFUSED for a in acks):
            return EXIT_FAILED
        return EXIT_TIMEOUT if timed_out else EXIT_OK
    finally:
        await store.close()


def _targets(
    members: list[OccurrenceRecord], named: list[str], now: float, settings: Settings
) -> list[str]:
    """Who is expected to answer: the named occurrences, or every live one."""
    if named:
        return sorted(set(named))
    return sorted(m.occurrence_id for m in members if m.is_alive(now, settings.member_ttl))


async def _wait(
    store: Store, command_id: str, expected: list[str], patience: float
) -> tuple[list[EmergencyAck], bool]:
    acks: list[EmergencyAck] = []
    with anyio.move_on_after(patience):
        while True:
            acks = await store.emergency_acks(command_id)
            if {a.occurrence_id for a in acks} >= set(expected):
                return acks, False
            await anyio.sleep(WAIT_POLL)
    return acks, True


def _report(
    record: CommandRecord, acks: list[EmergencyAck], expected: list[str], as_json: bool
) -> None:
    answered = {a.occurrence_id for a in acks}
    silent = [o for o in expected if o not in answered]
    if as_json:
        print(
            json.dumps(
                {
                    "command": record.model_dump(mode="json", exclude={"signed"}),
                    "acknowledged": [a.model_dump(mode="json") for a in acks],
                    "not_acknowledged": silent,
                },
                indent=2,
            )
        )
        return
    print(f"command {record.command_id}: {record.status.value} - {record.detail}")
    for ack in acks:
        print(
            f"  {ack.occurrence_id:<24} {ack.verdict.value:<8} "
            f"{ack.latency * 1000:8.1f} ms  {ack.detail}"
        )
    for occurrence_id in silent:
        print(f"  {occurrence_id:<24} no answer")
