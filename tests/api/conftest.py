"""Fixtures of the control API tier: a seeded database (every backend), an operator's
keys, and a real ``serve`` process over that database. Helpers live in api_server.py and
fleet_state.py."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from api_server import ApiServer, Signer, server_env, start_api
from fleet_state import Seeded, seed_fleet

from persistence import Store

# `fleet` (real `run` processes) lives with the processes tier; this tier runs alone too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "processes"))

# Seeded members never heartbeat: a long TTL keeps them alive for the whole test.
SERVER_SETTINGS = {"COORDINATOR_MEMBER_TTL": "3600", "COORDINATOR_LEASE_TTL": "60"}


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Store]:
    """The test's own connection to the database the server serves (system clock)."""
    store = await Store.open(database_url)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def seeded(db: Store) -> Seeded:
    return await seed_fleet(db)


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    """The operator whose public key the server trusts."""
    return Signer.generate(tmp_path, "operator")


@pytest.fixture
def stranger(tmp_path: Path) -> Signer:
    """Someone with a valid Ed25519 key that nobody trusts."""
    return Signer.generate(tmp_path, "stranger")


@pytest.fixture
def api_env(database_url: str, signer: Signer) -> dict[str, str]:
    return server_env(database_url, COORDINATOR_TRUSTED_KEYS=signer.public_text, **SERVER_SETTINGS)


@pytest.fixture
async def api(seeded: Seeded, api_env: dict[str, str], tmp_path: Path) -> AsyncIterator[ApiServer]:
    """``serve`` over the seeded database, with the token and the operator's key."""
    server = await start_api(tmp_path / "api", api_env)
    try:
        yield server
    finally:
        code = server.stop()
    assert code == 0, f"serve did not stop cleanly on SIGTERM:\n{server.stderr}"


@pytest.fixture
async def api_on_postgres(postgres_url: str, tmp_path: Path) -> AsyncIterator[ApiServer]:
    """``serve`` over a seeded PostgreSQL database of its own, for tests that break it."""
    store = await Store.open(postgres_url)
    try:
        await seed_fleet(store)
    finally:
        await store.close()
    server = await start_api(tmp_path / "api-on-postgres", server_env(postgres_url))
    try:
        yield server
    finally:
        code = server.stop()
    assert code == 0, f"serve did not stop cleanly on SIGTERM:\n{server.stderr}"
