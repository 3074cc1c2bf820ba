"""The pure parts of the control API, without a server: redaction and histogram math."""

from __future__ import annotations

import pytest

from coordinator.api.diagnostics import redacted_settings
from coordinator.api.metrics import histogram
from schemas import load_settings
from schemas.settings import hide_password


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+asyncpg://fleet:s3cret@db:5432/agents", "postgresql+asyncpg://fleet:***@db:5432/agents"),
        ("postgresql+asyncpg://fleet:p@ss:w@rd@db/agents", "postgresql+asyncpg://fleet:***@db/agents"),
        ("postgresql+asyncpg://fleet@db/agents", "postgresql+asyncpg://fleet@db/agents"),
        ("postgresql+asyncpg://db/agents?password=s3cret&ssl=require", "postgresql+asyncpg://db/agents?password=***&ssl=require"),
        ("postgresql+asyncpg://db/agents?ssl=require&PGPASSWORD=s3cret", "postgresql+asyncpg://db/agents?ssl=require&PGPASSWORD=***"),
        ("sqlite+aiosqlite:////var/lib/fleet@host.db", "sqlite+aiosqlite:////var/lib/fleet@host.db"),
        ("not a url with s3cret", "***"),
    ],
)  # fmt: skip
def test_hide_password_hides_every_password_and_nothing_else(url: str, shown: str) -> None:
    assert hide_password(url) == shown
    assert "s3cret" not in hide_password(url)


def test_redacted_settings_hide_the_token_and_inline_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COORDINATOR_API_TOKEN", "t0ken-t0ken-t0ken-t0ken")
    monkeypatch.setenv("COORDINATOR_DATABASE_URL", "postgresql://fleet:s3cret@db/agents")
    key = "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE="
    monkeypatch.setenv("COORDINATOR_TRUSTED_KEYS", f"{key},/etc/coordinator/ops.pub")

    shown = redacted_settings(load_settings())

    assert shown["api_token"] == "***"
    assert shown["database_url"] == "postgresql+asyncpg://fleet:***@db/agents"
    # A path that does not exist is shown as a key would be: no telling it apart.
    assert shown["trusted_keys"] == ["(inline key)", "(inline key)"]
    assert "t0ken" not in repr(shown) and "s3cret" not in repr(shown) and key not in repr(shown)


def test_histogram_buckets_are_cumulative_with_count_and_sum() -> None:
    family = histogram("x_seconds", "doc", ["kind"], (1.0, 5.0), {("a",): [0.5, 1.0, 3.0, 9.0]})

    samples = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert samples[("x_seconds_bucket", "1.0")] == 2  # a bound includes its own value
    assert samples[("x_seconds_bucket", "5.0")] == 3
    assert samples[("x_seconds_bucket", "+Inf")] == 4
    assert samples[("x_seconds_count", None)] == 4
    assert samples[("x_seconds_sum", None)] == 13.5
