"""Fixtures shared by the unit tier (pure code only: no database, no clock, no processes)."""

from __future__ import annotations

import os

import pytest

from schemas import Settings

_PREFIXES = ("COORDINATOR_", "AGENT_")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Remove every variable that ``Settings`` could read, so a test sees only what it sets."""
    field_names = {name.upper() for name in Settings.model_fields}
    for name in list(os.environ):
        upper = name.upper()
        if upper.startswith(_PREFIXES) or upper in field_names:
            monkeypatch.delenv(name)
    return monkeypatch
