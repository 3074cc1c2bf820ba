"""Helpers the tests import (a module of its own: with a conftest.py per tier, importing
from "conftest" would depend on which one pytest happened to load first)."""

from __future__ import annotations

from typing import Any

from schemas import Settings, load_settings

POSTGRES_ENV = "COORDINATOR_TEST_POSTGRES_URL"
POSTGRES_SKIP = (
    f"PostgreSQL tests need {POSTGRES_ENV}, "
    "e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test (.ci/run sets it)"
)

# Timings small enough for tests, in the ratios the defaults keep.
FAST_TIMINGS: dict[str, Any] = {
    "poll_interval": 0.25,
    "heartbeat_interval": 0.5,
    "member_ttl": 5.0,
    "lease_ttl": 2.0,
    "explorer_soak": 2.0,
    "early_adopter_soak": 3.0,
    "health_poll": 0.5,
    "health_timeout": 20.0,
    "discovery_grace": 5.0,
}


def fast_settings(**overrides: Any) -> Settings:
    return load_settings(**{**FAST_TIMINGS, **overrides})
