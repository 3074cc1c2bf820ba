"""The decision window: how long a wakeup decision stays in force for new occurrences."""

from __future__ import annotations

from schemas.records import RolloutRecord


def wakeup_in_force(
    latest_wakeup: RolloutRecord | None,
    latest_shutdown: RolloutRecord | None,
    now: float,
    window: float,
) -> RolloutRecord | None:
    """The wakeup decision still in force: decided within ``window`` seconds and not
    followed by an accepted shutdown (``latest_shutdown`` is the newest accepted one).
    New occurrences join it instead of deciding again."""
    if latest_wakeup is None or latest_wakeup.created_at < now - window:
        return None
    if latest_shutdown is not None and latest_shutdown.created_at >= latest_wakeup.created_at:
        return None
    return latest_wakeup
