"""Flags shared by commands: every setting as a flag, and friendly database checks."""

from __future__ import annotations

import argparse
import getpass
import os
import socket
import sys
from typing import Any

from coordinator.cli.arguments import utf8_text
from persistence.backends import backend_for
from schemas import ConfigurationError, DatabaseUnavailable, Settings, load_settings
from schemas.settings import (
    API_TOKEN_ENV,
    SECRET_SETTINGS,
    normalize_database_url,
    setting_env_name,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
"""Bad input or configuration: refused at start, nothing changed (argparse's own code
for a usage error, so its refusals and ours agree)."""
EXIT_EMERGENCY = 3
"""``run``: stopped by an operator's emergency command."""


def operator_name() -> str:
    """Who issues a command from this terminal, for the audit trail: user@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (e.g. in a bare container)
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def refuse(command: str, problem: object, code: int = EXIT_CONFIG) -> int:
    """Say on stderr why ``command`` will not go on, and return its exit code."""
    print(f"coordinator {command}: {problem}", file=sys.stderr)
    return code


_CUSTOM_FLAGS = {"database_url": "--db", "occurrence_id": "--occurrence-id"}


def setting_flag(name: str) -> str | None:
    """The ``run`` flag that overrides setting ``name``, or None for a secret (env only)."""
    if name in SECRET_SETTINGS:
        return None
    return _CUSTOM_FLAGS.get(name, "--" + name.replace("_", "-"))


def add_database_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        dest="database_url",
        metavar="URL",
        type=utf8_text,
        help=f"database URL (env {setting_env_name('database_url')}; "
        "default sqlite+aiosqlite:///./coordinator.db)",
    )


def add_logging_flags(parser: argparse.ArgumentParser) -> None:
    """For the long-running commands (``run``, ``serve``); the others log warnings only."""
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    parser.add_argument("--log-json", action="store_true", help="one JSON object per log line")


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting; a flag overrides its COORDINATOR_* environment variable.

    Secrets (``SECRET_SETTINGS``, e.g. the API token) get no flag: a command line is
    visible to every user of the host in ``ps``, so they come from the environment only.
    """
    add_database_flag(parser)
    group = parser.add_argument_group(
        "settings (durations in seconds; each overrides its env; secrets such as "
        f"{API_TOKEN_ENV} have no flag and come from the environment only)"
    )
    for name, field in Settings.model_fields.items():
        flag = setting_flag(name)
        if name == "database_url" or flag is None:  # --db is added above
            continue
        default = field.default if field.default is not None else "unset"
        group.add_argument(
            flag,
            dest=name,
            metavar="VALUE",
            type=utf8_text,
            help=f"env {setting_env_name(name)} (default {default})",
        )


def database_error(exc: BaseException) -> DatabaseUnavailable | None:
    """The database error behind ``exc``, also when a task group wrapped it."""
    if isinstance(exc, DatabaseUnavailable):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = database_error(inner)
            if found is not None:
                return found
    return None


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        name: getattr(args, name) for name in Settings.model_fields if hasattr(args, name)
    }
    return load_settings(**overrides)


def existing_database_url(args: argparse.Namespace) -> str:
    """The database URL, refusing a SQLite file that does not exist (a typo would
    otherwise create an empty database and report an empty fleet)."""
    url = settings_from_args(args).database_url
    url = normalize_database_url(url)
    path = backend_for(url).database_file(url)
    if path is not None and not path.exists():
        raise ConfigurationError(
            f"no coordinator database at {path}: start occurrences first, or point "
            f"--db / {setting_env_name('database_url')} at the fleet's database"
        )
    return url


def may_write(url: str) -> bool:
    """Whether this process may write the database: for a SQLite file, write access to it
    and to its directory (for the journal); a server's database is assumed writable (a
    role that may only read is refused each write, and the reads go on)."""
    path = backend_for(url).database_file(url)
    if path is None:
        return True
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
