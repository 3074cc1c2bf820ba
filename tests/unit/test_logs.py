"""Log lines: JSON lines carry a traceback as a field; the console prints it itself."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from coordinator.logs import configure_logging, get_logger


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    library = logging.getLogger("coordinator")
    handlers, level, propagate = list(library.handlers), library.level, library.propagate
    yield
    structlog.reset_defaults()
    library.handlers[:] = handlers
    library.setLevel(level)
    library.propagate = propagate


def test_json_lines_carry_the_traceback_as_a_field(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json=True)
    try:
        raise RuntimeError("the database said no")
    except RuntimeError as exc:
        structlog.get_logger("test").error("api_internal_error", exc_info=exc)

    line = json.loads(capsys.readouterr().err)
    assert line["event"] == "api_internal_error"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert line["exception"].endswith("RuntimeError: the database said no")


def test_console_lines_show_the_traceback_without_a_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", json=False)  # filterwarnings=error: a warning would fail
    try:
        raise RuntimeError("the database said no")
    except RuntimeError:
        structlog.get_logger("test").error("api_internal_error", exc_info=True)

    assert "RuntimeError: the database said no" in capsys.readouterr().err


def test_the_cli_renders_library_events_as_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json=True)
    log = get_logger("coordinator.store").bind(occurrence_id="o-1")
    log.debug("not_shown")
    try:
        raise RuntimeError("the disk is full")
    except RuntimeError as exc:
        log.warning("database_retry", attempt=2, exc_info=exc)

    (line,) = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    assert (line["event"], line["level"], line["occurrence_id"], line["attempt"]) == (
        "database_retry",
        "warning",
        "o-1",
        2,
    )
    assert line["exception"].endswith("RuntimeError: the disk is full")


def test_configuring_twice_prints_each_line_once(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info")
    configure_logging("info")
    get_logger().info("engine_loaded", source="builtin:accept")
    assert capsys.readouterr().err.count("engine_loaded") == 1


def test_library_loggers_live_under_coordinator() -> None:
    with pytest.raises(ValueError, match="under 'coordinator'"):
        get_logger("myagent")


def test_ids_bound_in_the_context_lead_a_library_line_and_a_call_field_wins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="coordinator")
    with structlog.contextvars.bound_contextvars(occurrence_id="o-1", incarnation_id="i-1"):
        get_logger("coordinator.store").info("database_retry", attempt=2)
        get_logger().info("feed_listening", occurrence_id="o-2")
    get_logger().info("after")
    retry, feed, after = (record.getMessage() for record in caplog.records)
    assert retry == "database_retry occurrence_id='o-1' incarnation_id='i-1' attempt=2"
    assert feed == "feed_listening occurrence_id='o-2' incarnation_id='i-1'"
    assert after == "after"
