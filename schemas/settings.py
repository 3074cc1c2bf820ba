"""Settings of one occurrence, read from ``COORDINATOR_*`` environment variables.

Durations are seconds. The FSD's own names ``AGENT_OCCURRENCE_ID`` and
``AGENT_OCCURRENCE_COUNT`` are accepted as well. ``load_settings`` turns every invalid
value into one ``ConfigurationError`` that names the offending settings.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Self, get_args

from pydantic import (
    AfterValidator,
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.errors import ConfigurationError, InvalidFleetId, InvalidOccurrenceId
from schemas.ids import DEFAULT_FLEET_ID, validate_fleet_id, validate_occurrence_id

ENV_PREFIX = "COORDINATOR_"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./coordinator.db"

# Plain driver names are mapped to the async drivers coordinator uses.
_SCHEME_ALIASES = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def normalize_database_url(url: str) -> str:
    """Return ``url`` with an async driver, or raise ``ValueError`` saying what is wrong."""
    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        raise ValueError(f"{url!r} is not a database URL (expected e.g. {DEFAULT_DATABASE_URL})")
    driver = _SCHEME_ALIASES.get(scheme.lower())
    if driver is None:
        supported = ", ".join(sorted(set(_SCHEME_ALIASES.values())))
        raise ValueError(f"unsupported database scheme {scheme!r} (supported: {supported})")
    if driver == "sqlite+aiosqlite" and not rest.startswith("/"):
        raise ValueError(f"{url!r}: a SQLite URL needs a path, e.g. sqlite+aiosqlite:///./fleet.db")
    return f"{driver}://{rest}"


REDACTED = "***"
_SECRET_QUERY = re.compile(r"(?i)([?&][^=&]*(?:pass|pwd|secret|token)[^=&]*=)[^&]*")


def hide_password(url: str) -> str:
    """``url`` with the password of its user part and of its query replaced by ``***``,
    for error messages, logs and diagnostics.

    When in doubt it hides more, never less: everything between the user name and the
    last ``@`` counts as the password, and a text that is not a URL is hidden whole.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return REDACTED
    if not rest.startswith("/"):  # SQLite paths start with "/" and carry no user part
        userinfo, at, location = rest.rpartition("@")
        if at and ":" in userinfo:
            rest = f"{userinfo.partition(':')[0]}:{REDACTED}@{location}"
    return _SECRET_QUERY.sub(rf"\1{REDACTED}", f"{scheme}{sep}{rest}")


# Sane ranges of the durations (seconds). Below MIN_INTERVAL a poll loop is a busy loop;
# above the maxima a deadline is "never" in practice, and 1e308 overflows the arithmetic
# of leases and clocks at run time instead of failing here.
MIN_INTERVAL = 0.01
MAX_INTERVAL = 3_600.0
MAX_DURATION = 7 * 86_400.0
MAX_DECISION_WINDOW = 366 * 86_400.0


def plain_number(value: float) -> str:
    """``604800`` rather than ``604800.0`` or ``6.048e+05``; ``0.01`` as it is."""
    return str(int(value)) if value == int(value) else f"{value:g}"


def _within(low: float, high: float) -> AfterValidator:
    def check(value: float) -> float:
        if not (math.isfinite(value) and low <= value <= high):
            raise ValueError(f"must be from {plain_number(low)} to {plain_number(high)} seconds")
        return value

    return AfterValidator(check)


Interval = Annotated[float, _within(MIN_INTERVAL, MAX_INTERVAL)]
"""How often something is done: from 10 ms to an hour."""
Duration = Annotated[float, _within(MIN_INTERVAL, MAX_DURATION)]
"""A lifetime or a timeout: from 10 ms to a week."""
Wait = Annotated[float, _within(0.0, MAX_DURATION)]
"""A wait that may be none: from 0 to a week."""
Window = Annotated[float, _within(MIN_INTERVAL, MAX_DECISION_WINDOW)]


def _utf8(value: str) -> str:
    """Refuse text with lone surrogates (bytes of the environment that are not UTF-8)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid UTF-8 text") from None
    return value


def _env(name: str, *extra: str) -> AliasChoices:
    # No bare field name here: aliases ignore env_prefix, so it would read OCCURRENCE_ID.
    # Keyword arguments still work through populate_by_name.
    return AliasChoices(ENV_PREFIX + name.upper(), *extra)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        allow_inf_nan=False,  # an infinite soak or timeout would stall a rollout for good
    )

    database_url: str = DEFAULT_DATABASE_URL
    fleet_id: str = Field(
        default=DEFAULT_FLEET_ID,
        description="this fleet's identity: the audience every emergency command must name",
    )
    occurrence_id: str = Field(
        default="default", validation_alias=_env("occurrence_id", "AGENT_OCCURRENCE_ID")
    )
    agent_occurrence_count: int | None = Field(
        default=None,
        ge=1,
        validation_alias=AliasChoices(
            ENV_PREFIX + "AGENT_OCCURRENCE_COUNT",
            "AGENT_OCCURRENCE_COUNT",
        ),
        description="how many occurrences the decider waits for before it snapshots the groups",
    )
    poll_interval: Interval = 1.0
    heartbeat_interval: Interval = 5.0
    member_ttl: Duration = 30.0
    lease_ttl: Duration = 15.0
    explorer_soak: Wait = 30.0
    early_adopter_soak: Wait = 60.0
    health_timeout: Duration = 300.0
    health_poll: Interval = 5.0
    early_adopter_fraction: float = Field(default=0.3, gt=0, lt=1)
    min_serving_fraction: float = Field(
        default=0.8,
        ge=0,
        lt=1,
        description="the fraction of a shutdown's planned members that keeps serving until "
        "its last wave: the early adopters are cut to fit (0: no cut)",
    )
    decision_window: Window = 86400.0
    discovery_grace: Wait = 10.0
    decision_timeout: Duration = Field(
        default=120.0,
        description="how long the decision engine may take to answer; then the claim is "
        "given back and another attempt decides",
    )
    engine: str | None = Field(
        default=None,
        description="decision engine of `run` as package.module:attr (unset: built-in accept)",
    )
    trusted_keys: str = Field(
        default="",
        description="comma-separated paths or base64 Ed25519 public keys trusted to sign "
        "emergency commands",
    )
    emergency_max_age: Duration = 300.0
    api_allowed_hosts: str = Field(
        default="",
        description="comma-separated host names `serve` answers to besides IP addresses, "
        "localhost and its --host (a guard against DNS rebinding)",
    )
    api_token: SecretStr | None = Field(
        default=None,
        description="bearer token the control API demands on mutating routes (`serve`)",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalize_database_url(_utf8(value))

    @field_validator("engine", "trusted_keys", "api_allowed_hosts")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return None if value is None else _utf8(value)

    @field_validator("api_token")
    @classmethod
    def _api_token(cls, value: SecretStr | None) -> SecretStr | None:
        # HTTP drops the whitespace around a header value, so a token read from a file
        # with its newline must lose it here too; a blank token is no token.
        token = value.get_secret_value().strip() if value is not None else ""
        return SecretStr(token) if token else None

    @field_validator("fleet_id")
    @classmethod
    def _fleet_id(cls, value: str) -> str:
        try:
            return validate_fleet_id(value)
        except InvalidFleetId as exc:
            raise ValueError(str(exc)) from None

    @field_validator("occurrence_id")
    @classmethod
    def _occurrence_id(cls, value: str) -> str:
        try:
            return validate_occurrence_id(value)
        except InvalidOccurrenceId as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _coherent_timings(self) -> Self:
        if self.member_ttl <= self.heartbeat_interval:
            raise ValueError(
                f"{ENV_PREFIX}MEMBER_TTL ({self.member_ttl}) must exceed "
                f"{ENV_PREFIX}HEARTBEAT_INTERVAL ({self.heartbeat_interval}), "
                "or live members would look dead between beats"
            )
        if self.lease_ttl <= self.poll_interval:
            raise ValueError(
                f"{ENV_PREFIX}LEASE_TTL ({self.lease_ttl}) must exceed {ENV_PREFIX}POLL_INTERVAL "
                f"({self.poll_interval}), "
                "or a holder could not renew its lease in time"
            )
        return self


SECRET_SETTINGS = frozenset(
    name
    for name, field in Settings.model_fields.items()
    if SecretStr in (field.annotation, *get_args(field.annotation))
)
"""Settings that hold a secret: read from the environment only (a command-line flag
would show in ``ps``), and never shown."""


def setting_env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


API_TOKEN_ENV = setting_env_name("api_token")


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, with ``overrides`` (e.g. CLI flags) on top.

    Raises ``ConfigurationError`` naming every invalid setting.
    """
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            # From the environment the location is already the variable's own name.
            name = field if field.isupper() else (setting_env_name(field) if field else "")
            message = str(error["msg"]).removeprefix("Value error, ")
            value = error.get("input")
            shown = "" if field == "" or isinstance(value, dict) else f" (got {value!r})"
            problems.append(f"{name}: {message}{shown}" if name else message)
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None
