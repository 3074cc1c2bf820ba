"""``migrate``: bring a database to this coordinator's schema, with evidence.

``--dry-run`` (the default) tries the migration in a transaction it rolls back and reports
what it would do; ``--apply`` does the same and commits when the gate is ready; ``--check``
only says whether the schema is behind. ``--export-json`` keeps the evidence.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import anyio

from coordinator.cli.arguments import add_command
from coordinator.cli.migrate_output import render
from coordinator.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    add_database_flag,
    existing_database_url,
    refuse,
    settings_from_args,
)
from persistence import create_engine
from persistence.migration import SchemaState
from persistence.migration_run import read_schema_state, run_migration
from schemas import ConfigurationError, DatabaseUnavailable
from schemas.settings import hide_password


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "migrate",
        help="bring the database to this coordinator's schema, with evidence",
        description="Inspect the database and migrate it to this coordinator's schema "
        "revision (Alembic, shipped in the package). Every mode holds the fleet's "
        "lifecycle lock while it works. --dry-run (the default) runs the migration in a "
        "transaction it rolls back: it reports the changes, the compatibility gate "
        "(ready or blocked, with issue codes), the rollback triggers, and each table's "
        "row count and content hash before and after, and changes nothing. --apply does "
        "the same and commits only when the gate is ready and no trigger fired. --check "
        "exits 1 when the database is behind. See docs/migrations.md.",
        example_lines=(
            "python -m coordinator migrate --db sqlite:///./fleet.db --export-json before.json",
            "python -m coordinator migrate --db sqlite:///./fleet.db --apply "
            "--export-json applied.json",
            "python -m coordinator migrate --check || echo 'migrate before starting the fleet'",
        ),
    )
    add_database_flag(parser)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run", action="store_true", help="report what would change (the default)"
    )
    mode.add_argument("--apply", action="store_true", help="apply when the gate is ready")
    mode.add_argument(
        "--check", action="store_true", help="exit 1 when the schema is behind, 0 at head"
    )
    parser.add_argument(
        "--export-json",
        metavar="FILE",
        type=Path,
        help="write the evidence to FILE as JSON (not with --check)",
    )
    parser.add_argument("--json", action="store_true", help="print the evidence as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.check and args.export_json:
        return refuse("migrate", "--export-json goes with --dry-run or --apply, not --check")
    try:
        url = existing_database_url(args)
        settings_from_args(args)
    except ConfigurationError as exc:
        return refuse("migrate", exc)
    if args.export_json and not args.export_json.parent.is_dir():
        return refuse("migrate", f"--export-json: no directory {args.export_json.parent}")
    try:
        if args.check:
            return _check(anyio.run(_state, url), as_json=args.json)
        evidence, ok = anyio.run(_migrate, url, bool(args.apply))
    except DatabaseUnavailable as exc:
        return refuse("migrate", f"{hide_password(url)}: {exc}")
    if args.export_json:
        _write_json(args.export_json, evidence)
    print(json.dumps(evidence, indent=2) if args.json else render(evidence, args.export_json))
    return EXIT_OK if ok else EXIT_FAILED


async def _state(url: str) -> SchemaState:
    engine = create_engine(url)
    try:
        return await read_schema_state(engine)
    finally:
        await engine.dispose()


async def _migrate(url: str, apply: bool) -> tuple[dict[str, Any], bool]:
    engine = create_engine(url)
    try:
        report = await run_migration(engine, apply=apply)
    finally:
        await engine.dispose()
    evidence = report.evidence(hide_password(url))
    nothing_to_do = report.state.at_head
    ok = nothing_to_do or (report.applied if apply else report.gate.ready and not report.triggered)
    return evidence, ok


def _check(state: SchemaState, *, as_json: bool) -> int:
    behind = not state.at_head
    if as_json:
        found = {"revision": state.revision, "head": state.head, "pending": list(state.pending)}
        print(json.dumps({**found, "known": state.known, "behind": behind}, indent=2))
    elif not state.known:
        print(f"unknown revision {state.revision} (head {state.head}): a newer coordinator")
    elif behind:
        at = state.revision or "no revision (a schema made before migrations, or none)"
        print(f"behind: {at}; head {state.head}; pending {', '.join(state.pending)}")
    else:
        print(f"at head {state.head}")
    return EXIT_FAILED if behind else EXIT_OK


def _write_json(path: Path, evidence: dict[str, Any]) -> None:
    """Whole or not at all: a reader never sees half the evidence."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(evidence, out, indent=2)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
