"""``GET /v1/diagnostics``: what this server runs, against what, configured how.

Secrets never leave: the API token and any password are replaced by ``***``, and
trusted keys are shown by key id only.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from coordinator.api.context import ApiContext
from coordinator.engine_loader import SETTING as ENGINE_ENV
from coordinator.engine_report import engine_entry
from coordinator.fleet_report import iso
from persistence import SCHEMA_VERSION, Store
from schemas import BUILTIN_ENGINE_NAME, Settings
from schemas.settings import REDACTED, SECRET_SETTINGS, hide_password

PACKAGES = (
    "coordinator",
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "pydantic",
    "fastapi",
    "starlette",
    "uvicorn",
    "prometheus-client",
    "cryptography",
)


def redacted_settings(settings: Settings) -> dict[str, Any]:
    shown: dict[str, Any] = settings.model_dump(mode="json")
    for name in SECRET_SETTINGS:
        if shown[name] is not None:
            shown[name] = REDACTED
    shown["database_url"] = hide_password(settings.database_url)
    shown["trusted_keys"] = _trusted_key_entries(settings.trusted_keys)
    return shown


def _trusted_key_entries(spec: str) -> list[str]:
    # Files are shown by path; an entry that is the key itself is shown as a placeholder.
    entries = [entry.strip() for entry in spec.split(",") if entry.strip()]
    return [e if Path(e).expanduser().is_file() else "(inline key)" for e in entries]


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


async def collect_diagnostics(context: ApiContext) -> dict[str, Any]:
    settings = context.settings
    packages = package_versions()
    return {
        "coordinator": {"version": packages["coordinator"]},
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
        },
        "packages": packages,
        "database": await _database(settings, context.store),
        "engine": {
            "source": settings.engine or BUILTIN_ENGINE_NAME,
            "setting": ENGINE_ENV,
            "note": "source: this server's setting (it loads no engine); occurrences: "
            "what each occurrence's newest incarnation loaded when it registered",
            **await _occurrence_engines(settings, context.store),
        },
        "emergency": {
            "trusted_keys": len(context.key_ids),
            "key_ids": list(context.key_ids),
            "max_age": settings.emergency_max_age,
        },
        "api": {
            "read_only": context.access.read_only,
            "token_configured": settings.api_token is not None,
        },
        "settings": redacted_settings(settings),
    }


async def _occurrence_engines(settings: Settings, store: Store) -> dict[str, Any]:
    try:
        members = await store.members()
        now = store.now()
    except Exception as exc:  # as for the database: reported, never raised
        return {"occurrences": None, "occurrences_error": str(exc) or type(exc).__name__}
    return {
        "occurrences": [
            {
                "occurrence_id": m.occurrence_id,
                "incarnation_id": m.incarnation_id,
                "alive": m.is_alive(now, settings.member_ttl),
                **engine_entry(m),
            }
            for m in members
        ]
    }


async def _database(settings: Settings, store: Store) -> dict[str, Any]:
    found: dict[str, Any] = {
        "backend": store.backend,
        "url": hide_password(settings.database_url),
        "schema_version": SCHEMA_VERSION,
        "clock_offset": round(store.clock_offset, 6),
    }
    try:
        # A real round trip: diagnostics must say so when the database stopped answering.
        live = await store.count_live(settings.member_ttl)
    except Exception as exc:  # any failure is the finding: diagnostics reports, never fails
        return {**found, "reachable": False, "error": str(exc) or type(exc).__name__}
    return {**found, "reachable": True, "now": iso(store.now()), "live_occurrences": live}
