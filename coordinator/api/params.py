"""Path and query parameters the routes share, held to what a stored record can have, so
a value no record can have is a 422 before the database is asked (PostgreSQL refuses
U+0000 in text and integers past its column's range: those were 503s)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Path, Query
from pydantic import StringConstraints, WithJsonSchema

MAX_EVENT_ID: Final = 2**31 - 1
"""The largest event id: ``events.event_id`` is a 32-bit integer on PostgreSQL."""

ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
"""Rollout ids (``wakeup_3f2a9c1b7d6e``) and command ids (UUIDs) alike."""

EVENT_KIND_PATTERN: Final = r"^[a-z_]{1,64}$"

_ID_SCHEMA = {"type": "string", "pattern": ID_PATTERN}

RolloutId = Annotated[str, Path(pattern=ID_PATTERN, description="e.g. wakeup_3f2a9c1b7d6e")]
CommandId = Annotated[str, Path(pattern=ID_PATTERN, description="a UUID")]
AfterId = Annotated[
    int, Query(ge=0, le=MAX_EVENT_ID, description="read events with a larger id than this")
]
RolloutFilter = Annotated[
    str | None,
    Query(pattern=ID_PATTERN, description="only events of this rollout"),
    # One type, not "string or null": a query parameter is absent, never null.
    WithJsonSchema(_ID_SCHEMA),
]
EventKindName = Annotated[str, StringConstraints(pattern=EVENT_KIND_PATTERN)]
EventKinds = Annotated[
    list[EventKindName],
    Query(description="only events of these kinds (repeat the parameter for several)"),
]
