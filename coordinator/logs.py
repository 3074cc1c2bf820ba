"""Logging of the command line: structlog console or JSON lines on stderr, with stable
snake_case event names and keyword fields.

The library itself configures nothing (see ``persistence.log``): its loggers hand every
event to the standard ``logging`` under ``coordinator``. ``configure_logging`` is what
the CLI's commands call to show them, and it is the only place that touches global
logging configuration.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from persistence.log import EVENT_FIELDS, EVENT_NAME, LIBRARY_LOGGER, get_logger
from schemas import NewEvent

__all__ = ["configure_logging", "get_logger", "log_events"]


class _CommandLineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``configure_logging`` installs (and replaces when called again)."""


class _CurrentStderr:
    """``sys.stderr`` as it is when a line is written, not when logging was configured
    (a test harness, or a caller of ``main``, may replace and close it meanwhile)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def _library_event(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Back from a ``LogRecord`` of a library logger to structlog's event dict."""
    record = event_dict.get("_record")
    if record is not None and hasattr(record, EVENT_NAME):
        event_dict["event"] = getattr(record, EVENT_NAME)
        event_dict.update(getattr(record, EVENT_FIELDS, {}))
    return event_dict


def configure_logging(
    level: str = "info", *, json: bool = False, stream: TextIO | None = None
) -> None:
    """Show the library's events (and those of structlog's own loggers) at ``level`` and
    above on ``stream`` (default stderr), as console lines or, with ``json``, JSON lines."""
    out: Any = stream if stream is not None else _CurrentStderr()
    # JSON lines carry a traceback (``exc_info=...``) as the text of an "exception" field;
    # the console renderer prints it itself, and warns if it was already formatted.
    rendering: list[Any] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if json
        else [structlog.dev.ConsoleRenderer(colors=out.isatty())]
    )
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    stamping: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *stamping, *rendering],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = _CommandLineHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[_library_event, *stamping],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        )
    )
    library = logging.getLogger(LIBRARY_LOGGER)
    for old in [h for h in library.handlers if isinstance(h, _CommandLineHandler)]:
        library.removeHandler(old)
    library.addHandler(handler)
    library.setLevel(numeric_level)
    library.propagate = False  # printed here once, not again by a root handler


def log_events(log: Any, events: tuple[NewEvent, ...] | list[NewEvent]) -> None:
    """Mirror audit events into the log, one line each, under the same name."""
    for event in events:
        fields = {k: v for k, v in event.details.items() if k not in ("event", "wave")}
        log.info(
            event.kind,
            rollout_id=event.rollout_id,
            wave=event.wave.value if event.wave else None,
            **fields,
        )
