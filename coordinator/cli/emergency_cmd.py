"""``emergency-shutdown``: a signed order that stops occurrences now, bypassing the
decision and the canary waves. With ``--wait``, who acknowledged, who did not, and how
long each took from the command's recording to its acknowledgement."""

from __future__ import annotations

import argparse
import json
import os
import stat
import time
from typing import Any

import anyio
from pydantic import ValidationError

from coordinator.cli.arguments import (
    add_command,
    reason_text,
    requester_text,
    seconds,
    utf8_text,
)
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
from coordinator.emergency_report import AckReport, expected_targets
from coordinator.signing import load_private_key, new_command, sign
from persistence import Store
from schemas import (
    CommandStatus,
    ConfigurationError,
    DatabaseUnavailable,
    EmergencyAck,
    Settings,
    SignedCommand,
    UnknownTargets,
)

EXIT_TIMEOUT = 4
WAIT_POLL = 0.05  # seconds between reads of the acknowledgements
MAX_WAIT = 86_400.0  # seconds: --timeout of --wait
MAX_KEY_FILE_BYTES = 64 * 1024  # a PEM Ed25519 private key is 119 bytes


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "emergency-shutdown",
        help="stop occurrences now with a signed command (no decision, no waves)",
        description="Sign an emergency shutdown with an Ed25519 private key and record it. "
        "Every targeted occurrence verifies it against COORDINATOR_TRUSTED_KEYS, calls "
        "on_emergency_stop, acknowledges and exits (run exits with code 3). A forged, "
        "unsigned, expired, replayed or other fleet's command changes nothing and is "
        "recorded as refused; a --target that never joined the fleet is refused before "
        "anything is recorded. "
        "Exit 0 when recorded (with --wait: when every target stopped; with --print: "
        "printed), 1 when refused or a target refused, 2 on bad input, 4 when --wait timed "
        "out.",
        example_lines=(
            'python -m coordinator emergency-shutdown --reason "runaway costs" \\',
            "    --key ~/.coordinator/coordinator_ed25519 --wait",
            'python -m coordinator emergency-shutdown --reason "stuck" --target occurrence-7 \\',
            "    --key ~/.coordinator/coordinator_ed25519 --print > stop.json",
        ),
    )
    add_database_flag(parser)
    parser.add_argument(
        "--reason", required=True, type=reason_text, help="why (kept in the audit trail)"
    )
    parser.add_argument("--key", required=True, metavar="PRIVATE_KEY", help="from keys generate")
    parser.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="ID",
        type=utf8_text,
        help="an occurrence to stop (repeat for more; default: the whole fleet)",
    )
    then = parser.add_mutually_exclusive_group()
    then.add_argument(
        "--wait",
        action="store_true",
        help="wait for the acknowledgements: who stopped, who refused, who did not answer, "
        "each cancel-to-ack latency and their p50/p95/max",
    )
    then.add_argument(
        "--print",
        action="store_true",
        help="print the signed command as JSON and record nothing: the body for POST "
        "/v1/emergency-shutdown of the control API (send it within "
        "COORDINATOR_EMERGENCY_MAX_AGE of now)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds(0, MAX_WAIT),
        default=30.0,
        metavar="SECONDS",
        help="how long --wait waits (0 to 86400; default 30)",
    )
    parser.add_argument(
        "--by", default=None, type=requester_text, help="who asks (default: user@host)"
    )
    parser.add_argument(
        "--fleet-id",
        dest="fleet_id",
        metavar="ID",
        type=utf8_text,
        help="the fleet the command is for, signed into it as its audience; occurrences of "
        "any other fleet refuse it (default: COORDINATOR_FLEET_ID, else 'default')",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    command = "emergency-shutdown"
    try:
        check_key_file(args.key)
        key = load_private_key(args.key)
        settings = settings_from_args(args)
        order = new_command(args.reason, args.target, now=time.time(), audience=settings.fleet_id)
        if not args.print:
            url = existing_database_url(args)
    except ConfigurationError as exc:
        return refuse(command, exc)
    except ValidationError as exc:
        problem = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        return refuse(command, problem)
    signed = sign(order, key)
    if args.print:
        # Nothing is recorded here: the control API records the command when it is POSTed,
        # so an operator without access to the database can still stop the fleet.
        print(signed.model_dump_json())
        return EXIT_OK
    try:
        return anyio.run(_issue, url, settings, signed, args)
    except (DatabaseUnavailable, UnknownTargets) as exc:
        return refuse(command, exc)


def check_key_file(path: str) -> None:
    """Refuse a --key that is not a small regular file before anything reads it: a device
    (``/dev/zero``) or a FIFO would be read forever, a huge file whole into memory."""
    try:
        found = os.stat(os.path.expanduser(path))
    except OSError:
        return  # loading it says what is wrong (no such file, no permission)
    if not stat.S_ISREG(found.st_mode):
        raise ConfigurationError(f"--key: {path} is not a regular file (expected a private key)")
    if found.st_size > MAX_KEY_FILE_BYTES:
        raise ConfigurationError(
            f"--key: {path} has {found.st_size} bytes; a private key file has at most "
            f"{MAX_KEY_FILE_BYTES} (expected one written by `keys generate`)"
        )


async def _issue(url: str, settings: Settings, signed: SignedCommand, args: Any) -> int:
    # Without trusted keys here, the first occurrence to see the command verifies it.
    verify = make_verifier(settings) if settings.trusted_keys else None
    store = await Store.open(url, server_time=True)
    try:
        expected = expected_targets(
            await store.members(), args.target, store.now(), settings.member_ttl
        )
        record = await store.submit_emergency(
            signed, issued_by=args.by or operator_name(), verify=verify
        )
        if record.status is CommandStatus.REFUSED:
            _report(AckReport(record, (), tuple(expected), waited=False), args.json)
            return refuse(
                "emergency-shutdown", f"refused ({record.refusal}): {record.detail}", EXIT_FAILED
            )
        if not args.wait:
            _report(AckReport(record, (), tuple(expected), waited=False), args.json)
            return EXIT_OK
        acks, timed_out = await _wait(store, record.command_id, expected, args.timeout)
        record = await store.command(record.command_id)
        report = AckReport(record, tuple(acks), tuple(expected))
        _report(report, args.json)
        if record.status is CommandStatus.REFUSED or report.refused:
            return EXIT_FAILED
        return EXIT_TIMEOUT if timed_out else EXIT_OK
    finally:
        await store.close()


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


def _report(report: AckReport, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print("\n".join(report.lines()))
