"""The command line: ``python -m coordinator COMMAND``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from coordinator import __version__
from coordinator.cli import (
    emergency_cmd,
    events_cmd,
    keys_cmd,
    migrate_cmd,
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
    migrate_cmd.add_parser(commands)
    return parser


BROKEN_PIPE_EXIT = 128 + signal.SIGPIPE
"""The exit code of a command whose reader went away (``events | head``), as if SIGPIPE had
ended it; Python ignores SIGPIPE, which a server's sockets need, so it is done by hand."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Logs go to stderr, so stdout stays clean for tables and --json; commands may raise it.
    configure_logging("warning")
    code: int = BROKEN_PIPE_EXIT
    try:
        code = args.handler(args)
    except* BrokenPipeError:  # bare, or out of a task group (simulate)
        # Nothing more can be written; without this the interpreter's own flush of stdout
        # at exit fails again and prints a second traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code
