"""Occurrence and fleet ids: what a valid one looks like, and the reserved shared id."""

from __future__ import annotations

import re

from schemas.errors import InvalidFleetId, InvalidOccurrenceId

SHARED_OCCURRENCE_ID = "__shared__"
"""``agent_occurrence_id`` of agent-level tasks, seen by every occurrence (the FSD's convention)."""

_VALID = re.compile(r"[A-Za-z0-9._-]{1,64}")
ID_RULE = "1-64 letters, digits, '.', '_' or '-'"
"""What ``_VALID`` accepts, in words: for error messages and the settings reference."""


def validate_occurrence_id(value: str) -> str:
    """Return ``value`` if it is a usable occurrence id, else raise ``InvalidOccurrenceId``."""
    if value == SHARED_OCCURRENCE_ID:
        raise InvalidOccurrenceId(
            f"occurrence id {value!r} is reserved for shared tasks; pick another id"
        )
    if not _VALID.fullmatch(value):
        raise InvalidOccurrenceId(f"occurrence id {value!r} is invalid: use {ID_RULE}")
    return value


DEFAULT_FLEET_ID = "default"
"""The fleet of a database whose occurrences set no ``COORDINATOR_FLEET_ID``."""


def validate_fleet_id(value: str) -> str:
    """Return ``value`` if it is a usable fleet id, else raise ``InvalidFleetId``."""
    if not _VALID.fullmatch(value):
        raise InvalidFleetId(f"fleet id {value!r} is invalid: use {ID_RULE}")
    return value
