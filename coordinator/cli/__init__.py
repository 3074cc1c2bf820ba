"""The command line: ``python -m coordinator COMMAND``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from coordinator import __version__
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
from coordinator.cli.arguments import CommandParser, HelpFormatter, examples
from coordinator.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = CommandParser(
        prog="python -m coordinator",
        description="Coordinate the N occurrences of one agent: one decision per wakeup or "
        "shutdown, rolled out in canary waves with health gates. "
        "`python -m coordinator COMMAND --help` documents each command.",
        epilog=examples(
            "python -m coordinator simulate                  # watch 9 occurrences, no setup",
            "python -m coordinator run --db sqlite:///fleet.db --occurrence-id occurrence-1",
            "python -m coordinator status --db sqlite:///fleet.db",
            'python -m coordinator shutdown --db sqlite:///fleet.db --reason "maintenance" --wait',
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
