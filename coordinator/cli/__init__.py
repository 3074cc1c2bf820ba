"""The command line: ``python -m coordinator COMMAND``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from coordinator.cli import (
    emergency_cmd,
    events_cmd,
    keys_cmd,
    rollout_cmd,
    run_cmd,
    serve_cmd,
    shutdown_cmd,
    simulate_cmd,
    smoke_cmd,
    status_cmd,
)
from coordinator.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m coordinator",
        description="Coordinate the N occurrences of one agent: one decision per wakeup or "
        "shutdown, rolled out in canary waves with health gates.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    simulate_cmd.add_parser(commands)
    run_cmd.add_parser(commands)
    status_cmd.add_parser(commands)
    shutdown_cmd.add_parser(commands)
    rollout_cmd.add_parser(commands)
    events_cmd.add_parser(commands)
    emergency_cmd.add_parser(commands)
    keys_cmd.add_parser(commands)
    serve_cmd.add_parser(commands)
    smoke_cmd.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Logs go to stderr, so stdout stays clean for tables and --json; commands may raise it.
    configure_logging("warning")
    code: int = args.handler(args)
    return code
