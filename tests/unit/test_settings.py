"""Settings from COORDINATOR_* (and the FSD's AGENT_*) variables, and occurrence ids."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import (
    SHARED_OCCURRENCE_ID,
    ConfigurationError,
    InvalidOccurrenceId,
    Settings,
    load_settings,
    validate_occurrence_id,
)
from schemas.settings import normalize_database_url

PROPERTY = settings(max_examples=150, deadline=None, database=None)

ID_ALPHABET = string.ascii_letters + string.digits + "._-"


def env_name(field: str) -> str:
    return "COORDINATOR_" + field.upper()


def assert_names(message: str, variable: str) -> None:
    """``variable`` appears in ``message`` as a whole name (not inside a longer one)."""
    assert re.search(rf"(?<![A-Z_]){re.escape(variable)}(?![A-Z_])", message), message


def config_error(env: pytest.MonkeyPatch, **variables: str) -> str:
    for name, value in variables.items():
        env.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    return str(caught.value)


# --- defaults and sources -----------------------------------------------------------------


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    loaded = load_settings()

    assert loaded.database_url == "sqlite+aiosqlite:///./coordinator.db"
    assert loaded.occurrence_id == "default"
    assert loaded.agent_occurrence_count is None
    # The FSD's timings: soak 30 s after the explorer, 60 s after early adopters, health
    # checked every 5 s for up to 300 s, 30 % early adopters, a 24 h decision window.
    assert (loaded.explorer_soak, loaded.early_adopter_soak) == (30.0, 60.0)
    assert (loaded.health_poll, loaded.health_timeout) == (5.0, 300.0)
    assert loaded.early_adopter_fraction == 0.3
    # The spec's capacity target: 80 % of a shutdown's fleet serves until its last wave.
    assert loaded.min_serving_fraction == 0.8
    assert loaded.decision_window == 24 * 3600
    # The defaults are coherent with each other.
    assert loaded.member_ttl > loaded.heartbeat_interval
    assert loaded.lease_ttl > loaded.poll_interval


def test_environment_variables_are_read(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("COORDINATOR_OCCURRENCE_ID", "occ-7")
    clean_env.setenv("COORDINATOR_AGENT_OCCURRENCE_COUNT", "9")
    clean_env.setenv("COORDINATOR_EXPLORER_SOAK", "12.5")
    clean_env.setenv("COORDINATOR_EARLY_ADOPTER_FRACTION", "0.5")
    clean_env.setenv("COORDINATOR_HEALTH_POLL", "2")
    clean_env.setenv("COORDINATOR_MIN_SERVING_FRACTION", "0")
    clean_env.setenv("COORDINATOR_DATABASE_URL", "sqlite:////var/lib/fleet.db")

    loaded = load_settings()

    assert loaded.occurrence_id == "occ-7"
    assert loaded.agent_occurrence_count == 9
    assert loaded.explorer_soak == 12.5
    assert loaded.early_adopter_fraction == 0.5
    assert loaded.health_poll == 2.0
    assert loaded.min_serving_fraction == 0.0  # 0 is allowed: no cut
    assert loaded.database_url == "sqlite+aiosqlite:////var/lib/fleet.db"


def test_overrides_win_over_the_environment_and_none_overrides_are_ignored(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("COORDINATOR_HEALTH_TIMEOUT", "120")
    clean_env.setenv("COORDINATOR_OCCURRENCE_ID", "from-env")

    loaded = load_settings(health_timeout=60.0, occurrence_id=None)

    assert loaded.health_timeout == 60.0
    assert loaded.occurrence_id == "from-env"


def test_the_fsd_names_are_accepted(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AGENT_OCCURRENCE_ID", "agent-3")
    clean_env.setenv("AGENT_OCCURRENCE_COUNT", "5")

    loaded = load_settings()

    assert (loaded.occurrence_id, loaded.agent_occurrence_count) == ("agent-3", 5)


def test_coordinator_names_take_precedence_over_the_fsd_names(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("AGENT_OCCURRENCE_ID", "agent-3")
    clean_env.setenv("COORDINATOR_OCCURRENCE_ID", "coord-3")
    clean_env.setenv("AGENT_OCCURRENCE_COUNT", "5")
    clean_env.setenv("COORDINATOR_AGENT_OCCURRENCE_COUNT", "7")

    loaded = load_settings()

    assert (loaded.occurrence_id, loaded.agent_occurrence_count) == ("coord-3", 7)


def test_an_unprefixed_occurrence_id_variable_is_not_read(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("OCCURRENCE_ID", "someone-elses-variable")

    assert load_settings().occurrence_id == "default"


def test_settings_are_frozen(clean_env: pytest.MonkeyPatch) -> None:
    loaded = load_settings()

    with pytest.raises(ValueError, match="frozen"):
        loaded.poll_interval = 2.0  # type: ignore[misc]


# --- numeric settings rejecting bad values ------------------------------------------------

POSITIVE = [
    "poll_interval",
    "heartbeat_interval",
    "member_ttl",
    "lease_ttl",
    "health_timeout",
    "health_poll",
    "decision_window",
    "decision_timeout",
    "emergency_max_age",
]
NON_NEGATIVE = ["explorer_soak", "early_adopter_soak", "discovery_grace"]

BAD_VALUES: list[tuple[str, str]] = [
    *[
        (field, value)
        for field in POSITIVE
        for value in ("0", "-1", "abc", "nan", "inf", "1e308", "1e-300", "0.001")
    ],
    *[
        (field, value)
        for field in NON_NEGATIVE
        for value in ("-0.5", "abc", "nan", "inf", "1e308", "604801")
    ],
    *[("early_adopter_fraction", value) for value in ("0", "1", "1.5", "-0.1", "abc")],
    *[("min_serving_fraction", value) for value in ("1", "1.5", "-0.1", "nan", "abc")],
    *[("agent_occurrence_count", value) for value in ("0", "-3", "2.5", "abc")],
]


def _bad_value_params() -> list[object]:
    return [
        pytest.param(
            field,
            value,
            id=f"{field}={value}",
        )
        for field, value in BAD_VALUES
    ]


def test_every_numeric_setting_is_covered_by_the_bad_value_table() -> None:
    numeric = {
        name
        for name, info in Settings.model_fields.items()
        if info.annotation in (int, float, int | None, float | None)
    }

    assert numeric == {field for field, _ in BAD_VALUES}


@pytest.mark.parametrize(("field", "value"), _bad_value_params())
def test_a_bad_numeric_value_is_a_configuration_error_naming_the_variable(
    clean_env: pytest.MonkeyPatch, field: str, value: str
) -> None:
    message = config_error(clean_env, **{env_name(field): value})

    assert_names(message, env_name(field))
    assert repr(value) in message


@pytest.mark.parametrize(
    ("variable", "value", "range_named"),
    [
        ("COORDINATOR_POLL_INTERVAL", "1e-300", "must be from 0.01 to 3600 seconds"),
        ("COORDINATOR_HEALTH_POLL", "7200", "must be from 0.01 to 3600 seconds"),
        ("COORDINATOR_LEASE_TTL", "1e308", "must be from 0.01 to 604800 seconds"),
        ("COORDINATOR_EXPLORER_SOAK", "1e9", "must be from 0 to 604800 seconds"),
        ("COORDINATOR_DECISION_WINDOW", "1e308", "must be from 0.01 to 31622400 seconds"),
    ],
)
def test_a_duration_out_of_its_sane_range_names_the_range(
    clean_env: pytest.MonkeyPatch, variable: str, value: str, range_named: str
) -> None:
    message = config_error(clean_env, **{variable: value})
    assert f"{variable}: {range_named} (got '{value}')" in message


def test_durations_at_the_ends_of_their_ranges_are_accepted(clean_env: pytest.MonkeyPatch) -> None:
    loaded = load_settings(
        poll_interval=0.01,
        heartbeat_interval=3600,
        member_ttl=604800,
        lease_ttl=604800,
        explorer_soak=0,
        early_adopter_soak=604800,
        decision_window=366 * 86400,
    )
    assert (loaded.poll_interval, loaded.explorer_soak) == (0.01, 0.0)


def test_text_settings_must_be_utf8(clean_env: pytest.MonkeyPatch) -> None:
    for variable, value in [
        ("COORDINATOR_DATABASE_URL", "sqlite:///\udcff.db"),
        ("COORDINATOR_ENGINE", "pkg.\udcff:Engine"),
        ("COORDINATOR_TRUSTED_KEYS", "/keys/\udcff.pub"),
    ]:
        with pytest.raises(ConfigurationError, match=f"{variable}: must be valid UTF-8 text"):
            load_settings(**{variable.removeprefix("COORDINATOR_").lower(): value})


@pytest.mark.parametrize("value", ["0", "abc"])
def test_a_bad_count_given_by_its_fsd_name_is_reported(
    clean_env: pytest.MonkeyPatch, value: str
) -> None:
    message = config_error(clean_env, AGENT_OCCURRENCE_COUNT=value)

    assert "AGENT_OCCURRENCE_COUNT" in message
    assert repr(value) in message


def test_a_bad_count_is_reported_under_one_variable_name(clean_env: pytest.MonkeyPatch) -> None:
    message = config_error(clean_env, AGENT_OCCURRENCE_COUNT="0")

    assert "COORDINATOR_COORDINATOR_" not in message


def test_every_invalid_setting_is_named_in_one_error(clean_env: pytest.MonkeyPatch) -> None:
    message = config_error(clean_env, COORDINATOR_HEALTH_POLL="0", COORDINATOR_EXPLORER_SOAK="-1")

    assert_names(message, "COORDINATOR_HEALTH_POLL")
    assert_names(message, "COORDINATOR_EXPLORER_SOAK")


def test_configuration_error_is_a_value_error(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("COORDINATOR_POLL_INTERVAL", "-1")

    with pytest.raises(ValueError):
        load_settings()


# --- coherent timings ---------------------------------------------------------------------


@pytest.mark.parametrize(("ttl", "interval"), [("5", "5"), ("4", "5"), ("10", "30")])
def test_member_ttl_must_exceed_the_heartbeat_interval(
    clean_env: pytest.MonkeyPatch, ttl: str, interval: str
) -> None:
    message = config_error(
        clean_env, COORDINATOR_MEMBER_TTL=ttl, COORDINATOR_HEARTBEAT_INTERVAL=interval
    )

    assert_names(message, "COORDINATOR_MEMBER_TTL")
    assert_names(message, "COORDINATOR_HEARTBEAT_INTERVAL")


@pytest.mark.parametrize(("ttl", "interval"), [("2", "2"), ("1", "2"), ("15", "20")])
def test_lease_ttl_must_exceed_the_poll_interval(
    clean_env: pytest.MonkeyPatch, ttl: str, interval: str
) -> None:
    message = config_error(clean_env, COORDINATOR_LEASE_TTL=ttl, COORDINATOR_POLL_INTERVAL=interval)

    assert_names(message, "COORDINATOR_LEASE_TTL")
    assert_names(message, "COORDINATOR_POLL_INTERVAL")


def test_timings_just_above_their_bounds_are_accepted(clean_env: pytest.MonkeyPatch) -> None:
    loaded = load_settings(
        member_ttl=5.001, heartbeat_interval=5.0, lease_ttl=2.001, poll_interval=2.0
    )

    assert (loaded.member_ttl, loaded.lease_ttl) == (5.001, 2.001)


# --- database URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///./fleet.db", "sqlite+aiosqlite:///./fleet.db"),
        ("sqlite:////abs/fleet.db", "sqlite+aiosqlite:////abs/fleet.db"),
        ("SQLite:///fleet.db", "sqlite+aiosqlite:///fleet.db"),
        ("sqlite+aiosqlite:///./fleet.db", "sqlite+aiosqlite:///./fleet.db"),
        ("postgresql://u:p@db:5432/fleet", "postgresql+asyncpg://u:p@db:5432/fleet"),
        ("postgres://u@db/fleet", "postgresql+asyncpg://u@db/fleet"),
        ("postgresql+asyncpg://u@db/fleet", "postgresql+asyncpg://u@db/fleet"),
    ],
)
def test_database_urls_are_given_an_async_driver(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://u@db/fleet", "unsupported database scheme 'mysql'"),
        ("postgresql+psycopg2://u@db/fleet", "unsupported database scheme"),
        ("sqlite://", "not a database URL"),
        ("sqlite://fleet.db", "needs a path"),
        ("fleet.db", "not a database URL"),
        ("", "not a database URL"),
    ],
)
def test_unusable_database_urls_are_rejected(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        normalize_database_url(url)


def test_a_bad_database_url_in_the_environment_names_the_variable(
    clean_env: pytest.MonkeyPatch,
) -> None:
    message = config_error(clean_env, COORDINATOR_DATABASE_URL="mysql://u@db/fleet")

    assert_names(message, "COORDINATOR_DATABASE_URL")
    assert "mysql" in message


# --- occurrence ids -----------------------------------------------------------------------

valid_ids = st.text(alphabet=ID_ALPHABET, min_size=1, max_size=64).filter(
    lambda s: s != SHARED_OCCURRENCE_ID
)
foreign_chars = st.characters().filter(lambda c: c not in ID_ALPHABET)


@PROPERTY
@given(value=valid_ids)
def test_ids_of_the_valid_alphabet_and_length_are_accepted(value: str) -> None:
    assert validate_occurrence_id(value) == value


@PROPERTY
@given(
    prefix=st.text(alphabet=ID_ALPHABET, max_size=40),
    bad=foreign_chars,
    suffix=st.text(alphabet=ID_ALPHABET, max_size=23),
)
def test_ids_with_any_character_outside_the_alphabet_are_rejected(
    prefix: str, bad: str, suffix: str
) -> None:
    with pytest.raises(InvalidOccurrenceId):
        validate_occurrence_id(prefix + bad + suffix)


@PROPERTY
@given(value=st.text(alphabet=ID_ALPHABET, min_size=65, max_size=200))
def test_ids_longer_than_64_characters_are_rejected(value: str) -> None:
    with pytest.raises(InvalidOccurrenceId):
        validate_occurrence_id(value)


@pytest.mark.parametrize("value", ["", "a\n", "\nA", "a b", "occ/1", "é"])
def test_edge_case_ids_are_rejected(value: str) -> None:
    with pytest.raises(InvalidOccurrenceId, match="invalid"):
        validate_occurrence_id(value)


def test_the_shared_id_is_reserved() -> None:
    with pytest.raises(InvalidOccurrenceId, match="reserved"):
        validate_occurrence_id(SHARED_OCCURRENCE_ID)


def test_the_longest_valid_id_is_accepted() -> None:
    assert validate_occurrence_id("x" * 64) == "x" * 64


def test_invalid_occurrence_id_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        validate_occurrence_id("bad id")


@pytest.mark.parametrize(
    "variable",
    [
        "COORDINATOR_OCCURRENCE_ID",
        pytest.param("AGENT_OCCURRENCE_ID", id="fsd-name"),
    ],
)
def test_an_invalid_occurrence_id_in_the_environment_is_a_configuration_error(
    clean_env: pytest.MonkeyPatch, variable: str
) -> None:
    message = config_error(clean_env, **{variable: "__shared__"})

    assert "reserved" in message


def test_an_invalid_occurrence_id_names_coordinator_occurrence_id(
    clean_env: pytest.MonkeyPatch,
) -> None:
    message = config_error(clean_env, COORDINATOR_OCCURRENCE_ID="bad id")

    assert_names(message, "COORDINATOR_OCCURRENCE_ID")


@pytest.mark.parametrize(
    ("value", "token"),
    [("t0ken-t0ken\n", "t0ken-t0ken"), ("  t0ken  ", "t0ken"), ("   ", None), ("", None)],
)
def test_the_api_token_loses_surrounding_whitespace_and_a_blank_one_is_unset(
    clean_env: pytest.MonkeyPatch, value: str, token: str | None
) -> None:
    # HTTP drops the whitespace around a header value: the token must match without it.
    clean_env.setenv("COORDINATOR_API_TOKEN", value)
    loaded = load_settings().api_token
    assert (loaded.get_secret_value() if loaded else None) == token
