"""Log lines: JSON lines carry a traceback as a field; the console prints it itself."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog

from coordinator.logs import configure_logging


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


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
