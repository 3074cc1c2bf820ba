"""structlog setup: stable snake_case event names with keyword fields, to stderr."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from schemas import NewEvent


def configure_logging(level: str = "info", *, json: bool = False) -> None:
    # JSON lines carry a traceback (``exc_info=...``) as the text of an "exception" field;
    # the console renderer prints it itself, and warns if it was already formatted.
    rendering: list[Any] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if json
        else [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *rendering,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


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
