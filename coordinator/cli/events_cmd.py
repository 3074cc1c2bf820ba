"""``events``: the audit trail, newest last; ``--follow`` keeps printing as it grows."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

import anyio

from coordinator.cli.arguments import add_command, bounded_int, utf8_text
from coordinator.cli.options import (
    EXIT_OK,
    add_database_flag,
    existing_database_url,
    refuse,
)
from coordinator.terminal_text import printable
from persistence import Change, ChangeFeed, Store
from schemas import ConfigurationError, DatabaseUnavailable, EventRecord

MAX_LIMIT = 10_000
FOLLOW_POLL = 1.0  # seconds between reads when no change notification arrives


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "events",
        help="show the audit trail",
        description="Show the audit trail, newest last: every decision, wave transition, "
        "state change, operator command and refusal. With --follow, keep printing new events "
        "until interrupted (Ctrl-C). Text output escapes control characters of stored text "
        "(\\x1b, \\u202e); --json prints it exactly. Needs only read access to the database.",
        example_lines=(
            "python -m coordinator events --db sqlite:///./fleet.db --limit 20",
            "python -m coordinator events --follow --rollout shutdown_3f2a9c1b7d6e",
            "python -m coordinator events --json | jq -c 'select(.kind == \"wave_failed\")'",
        ),
    )
    add_database_flag(parser)
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument(
        "--rollout", metavar="ID", type=utf8_text, default=None, help="only this rollout's"
    )
    parser.add_argument(
        "--limit",
        type=bounded_int(1, MAX_LIMIT),
        default=50,
        help="how many of the newest (default 50)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    try:
        url = existing_database_url(args)
    except ConfigurationError as exc:
        return refuse("events", exc)
    try:
        anyio.run(_show, url, args)
    except DatabaseUnavailable as exc:
        return refuse("events", exc)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


async def _show(url: str, args: argparse.Namespace) -> None:
    store = await Store.open(url, read_only=True)  # reading needs no write access
    try:
        shown = await store.latest_events(args.limit, rollout_id=args.rollout)
        _print(shown, args.json)
        if args.follow:
            await _follow(store, url, shown[-1].event_id if shown else 0, args)
    finally:
        await store.close()


async def _follow(store: Store, url: str, last_id: int, args: argparse.Namespace) -> None:
    changed = anyio.Event()

    def wake(_changes: frozenset[Change]) -> None:
        changed.set()  # every change is new events

    async with anyio.create_task_group() as tg:
        tg.start_soon(ChangeFeed(url).run, wake, "events --follow")
        while True:
            new = await store.events(after_id=last_id, rollout_id=args.rollout)
            if new:
                _print(new, args.json)
                last_id = new[-1].event_id
            with anyio.move_on_after(FOLLOW_POLL):
                await changed.wait()
            changed = anyio.Event()


def _print(found: list[EventRecord], as_json: bool) -> None:
    for event in found:
        print(json.dumps(as_dict(event)) if as_json else render(event))
    sys.stdout.flush()


def as_dict(event: EventRecord) -> dict[str, Any]:
    return {**event.model_dump(mode="json"), "at_iso": _iso(event.at)}


def render(event: EventRecord) -> str:
    """One line of text; stored text is escaped (``printable``), so what an occurrence,
    an engine or an operator wrote cannot act on the terminal or span lines."""
    where = " ".join(
        part
        for part in (
            event.occurrence_id or "",
            event.rollout_id or "",
            event.wave.value if event.wave else "",
        )
        if part
    )
    details = " ".join(
        f"{printable(k)}={_short(v)}" for k, v in event.details.items() if v is not None
    )
    line = f"{event.event_id:>6}  {_iso(event.at)}  {printable(event.kind):<24} {printable(where)}"
    return f"{line}  {details}".rstrip()


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _short(value: Any) -> str:
    text = printable(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    return text if len(text) <= 80 else text[:77] + "..."
