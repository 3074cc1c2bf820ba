"""Argument types and the parser class of every command: bad input is refused while the
command line is parsed, with exit 2 and one line that names the flag.

A value argparse accepts here is one the command can use as it is: a finite number in a
range the command copes with, text that is valid UTF-8. Python decodes the bytes of
``argv`` with ``surrogateescape``, so ``--reason $'bad\\xff'`` arrives as a string with a
lone surrogate that no database, JSON encoder or terminal accepts later.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn

from schemas.commands import MAX_REASON_LENGTH
from schemas.settings import plain_number

MAX_REQUESTER_LENGTH = 64  # characters, as the control API allows

USAGE_ERROR = 2  # argparse's code, and the CLI's EXIT_CONFIG


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (not the usage block),
    so the flag at fault is the first thing a user reads."""

    def error(self, message: str) -> NoReturn:
        # "coordinator shutdown: ...", as the commands' own refusals (``refuse``) begin.
        command = self.prog.removeprefix("python -m ")
        self.exit(USAGE_ERROR, f"{command}: {message} (see --help)\n")


def utf8_text(value: str) -> str:
    """Text that is valid UTF-8 (no bytes argv could not decode)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # The undecodable bytes as \xNN, the rest as typed.
        shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise argparse.ArgumentTypeError(f"must be valid UTF-8 text (got '{shown}')") from None
    return value


def reason_text(value: str) -> str:
    """Why a command is given: UTF-8, not blank, at most ``MAX_REASON_LENGTH`` characters
    (the control API's limits), without the surrounding whitespace."""
    reason = utf8_text(value).strip()
    if not reason:
        raise argparse.ArgumentTypeError("must not be empty")
    if len(reason) > MAX_REASON_LENGTH:
        raise argparse.ArgumentTypeError(
            f"has {len(reason)} characters; at most {MAX_REASON_LENGTH} are allowed"
        )
    return reason


def requester_text(value: str) -> str:
    """Who asks: UTF-8, not blank, at most ``MAX_REQUESTER_LENGTH`` characters."""
    name = utf8_text(value).strip()
    if not name or len(name) > MAX_REQUESTER_LENGTH:
        raise argparse.ArgumentTypeError(
            f"must be 1 to {MAX_REQUESTER_LENGTH} characters (got {len(name)})"
        )
    return name


def seconds(low: float, high: float) -> Callable[[str], float]:
    """A duration from ``low`` to ``high`` seconds, both included."""
    return bounded_float(low, high, "a number of seconds")


def bounded_float(low: float, high: float, what: str) -> Callable[[str], float]:
    """A number from ``low`` to ``high``, never NaN or infinite (a NaN compares false with
    everything, so it would slip through every later check)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(
                f"must be {what} from {plain_number(low)} to {plain_number(high)} (got {text!r})"
            )
        return value

    return parse


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number (got {text!r})") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high} (got {value})")
        return value

    return parse


def examples(*lines: str) -> str:
    """The epilog of a command's ``--help``: examples to copy, one per line."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


class HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions as usual, but keeps the lines of the examples as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    help: str,
    description: str,
    example_lines: tuple[str, ...],
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` ends with examples."""
    return commands.add_parser(
        name,
        help=help,
        description=description,
        epilog=examples(*example_lines),
        formatter_class=HelpFormatter,
    )
