"""The library's loggers: structlog's API in front, the standard ``logging`` behind.

A library must leave logging to the application that embeds it. These loggers configure
nothing global (no ``structlog.configure``, no handler but logging's own ``NullHandler``
on ``coordinator``): until the application configures ``logging``, an embedded runtime
prints nothing. Once it does (``logging.basicConfig(level=logging.INFO)``, or its own
handlers), every event arrives as a ``LogRecord`` of a logger under ``coordinator``:

- ``record.getMessage()``: ``"wave_signalled rollout_id='wakeup_1' members=[...]"``;
- ``record.event_name``: the stable snake_case name (``"wave_signalled"``);
- ``record.event_fields``: the keyword fields, as a dict (for JSON formatters);
- ``record.exc_info``: the traceback of ``exc_info=...``, as logging expects it.

The CLI (``coordinator.logs.configure_logging``) adds a handler that renders them as
structlog console or JSON lines. Lives in the bottom layer that logs, so ``persistence``
and ``coordinator`` share it.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

LIBRARY_LOGGER = "coordinator"
EVENT_NAME = "event_name"
EVENT_FIELDS = "event_fields"

logging.getLogger(LIBRARY_LOGGER).addHandler(logging.NullHandler())


def _to_log_record(_logger: Any, _method: str, event_dict: dict[str, Any]) -> Any:
    """The last processor: structlog's event dict as the arguments of a ``logging`` call."""
    fields = dict(event_dict)
    name = str(fields.pop("event", ""))
    exc_info = fields.pop("exc_info", None)
    stack_info = bool(fields.pop("stack_info", False))
    message = " ".join([name, *(f"{key}={value!r}" for key, value in fields.items())])
    return (message,), {
        "exc_info": exc_info,
        "stack_info": stack_info,
        "extra": {EVENT_NAME: name, EVENT_FIELDS: fields},
    }


LEADING_FIELDS = ("occurrence_id", "incarnation_id")
"""Context fields that open a line, in this order (the rest follow by name): a
``contextvars`` context keeps no order of its own."""


def _context_order(key: str) -> tuple[int, str]:
    return (LEADING_FIELDS.index(key), "") if key in LEADING_FIELDS else (len(LEADING_FIELDS), key)


def _context_first(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """``structlog.contextvars.merge_contextvars``, but the context's fields (a run's
    ``occurrence_id`` and ``incarnation_id``) lead, as fields bound to the logger would:
    a line reads ``occurrence_registered occurrence_id='o-1' incarnation_id=... pid=12``.
    A field given to the call itself still wins."""
    context = structlog.contextvars.get_contextvars()
    if not context:
        return event_dict
    merged = {key: value for key, value in event_dict.items() if key == "event"}
    merged.update((key, context[key]) for key in sorted(context, key=_context_order))
    merged.update(event_dict)
    return merged


_PROCESSORS: list[Any] = [
    structlog.stdlib.filter_by_level,  # a disabled level costs no formatting
    _context_first,
    _to_log_record,
]


def get_logger(name: str = LIBRARY_LOGGER) -> Any:
    """A structlog logger (``log.info("event_name", key=value)``, ``.bind(...)``) that
    hands its events to the standard logger ``name`` (under ``coordinator``)."""
    if name != LIBRARY_LOGGER and not name.startswith(LIBRARY_LOGGER + "."):
        raise ValueError(f"library loggers live under {LIBRARY_LOGGER!r} (got {name!r})")
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=_PROCESSORS,
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
