"""Settings of one occurrence, read from ``COORDINATOR_*`` environment variables.

Durations are seconds. The FSD's own names ``AGENT_OCCURRENCE_ID`` and
``AGENT_OCCURRENCE_COUNT`` are accepted as well. ``load_settings`` turns every invalid
value into one ``ConfigurationError`` that names the offending settings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
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
from pydantic.config import JsonDict
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.errors import ConfigurationError, InvalidFleetId, InvalidOccurrenceId
from schemas.ids import (
    DEFAULT_FLEET_ID,
    ID_RULE,
    SHARED_OCCURRENCE_ID,
    validate_fleet_id,
    validate_occurrence_id,
)

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


@dataclass(frozen=True)
class SecondsRange:
    """The range of a duration setting, kept in its type so that the settings reference
    can show it (a bare validator function could not be read back)."""

    low: float
    high: float

    def check(self, value: float) -> float:
        if not (math.isfinite(value) and self.low <= value <= self.high):
            raise ValueError(f"must be from {self} seconds")
        return value

    def __str__(self) -> str:
        return f"{plain_number(self.low)} to {plain_number(self.high)}"


_INTERVAL = SecondsRange(MIN_INTERVAL, MAX_INTERVAL)
_DURATION = SecondsRange(MIN_INTERVAL, MAX_DURATION)
_WAIT = SecondsRange(0.0, MAX_DURATION)
_WINDOW = SecondsRange(MIN_INTERVAL, MAX_DECISION_WINDOW)

Interval = Annotated[float, _INTERVAL, AfterValidator(_INTERVAL.check)]
"""How often something is done: from 10 ms to an hour."""
Duration = Annotated[float, _DURATION, AfterValidator(_DURATION.check)]
"""A lifetime or a timeout: from 10 ms to a week."""
Wait = Annotated[float, _WAIT, AfterValidator(_WAIT.check)]
"""A wait that may be none: from 0 to a week."""
Window = Annotated[float, _WINDOW, AfterValidator(_WINDOW.check)]
"""How far back a decision still counts: from 10 ms to 366 days."""


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


def _allowed(rule: str) -> JsonDict:
    """A rule a validator enforces, in words, for the settings reference."""
    return {"allowed": rule}


# From the aliases, so the reference names exactly what normalize_database_url takes.
_DATABASE_URL_RULE = (
    "a URL of "
    + " or ".join(f"`{driver}://`" for driver in sorted(set(_SCHEME_ALIASES.values())))
    + " ("
    + ", ".join(
        f"`{plain}://`" for plain in sorted(_SCHEME_ALIASES.keys() - _SCHEME_ALIASES.values())
    )
    + " are mapped to these); a SQLite URL needs a path"
)

MIN_TOKEN_LENGTH = 16  # characters; `openssl rand -hex 32` gives 64

MUST_EXCEED = {
    "member_ttl": ("heartbeat_interval", "or live members would look dead between beats"),
    "lease_ttl": ("poll_interval", "or a holder could not renew its lease in time"),
}
"""Settings that must be longer than another one: longer -> (shorter, why)."""


def setting_env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        allow_inf_nan=False,  # an infinite soak or timeout would stall a rollout for good
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="The database every occurrence of the fleet shares, as a SQLAlchemy URL "
        "(a password in it is hidden in logs and diagnostics). The SQLite default suits a "
        "fleet on one host; point every occurrence at one PostgreSQL database when the "
        "fleet spans hosts.",
        json_schema_extra=_allowed(_DATABASE_URL_RULE),
    )
    fleet_id: str = Field(
        default=DEFAULT_FLEET_ID,
        description="This fleet's identity: the audience every emergency command must name, "
        "so a command signed for another fleet is refused; `status` shows it. Set the same "
        "value on every occurrence, `serve` and `emergency-shutdown` of one fleet, and a "
        "different one per fleet when fleets share keys.",
        json_schema_extra=_allowed(ID_RULE),
    )
    occurrence_id: str = Field(
        default="default",
        validation_alias=_env("occurrence_id", "AGENT_OCCURRENCE_ID"),
        description="This occurrence's id, under which it registers, heartbeats and is "
        "signalled. Give every occurrence of the fleet its own (e.g. the host or pod name).",
        json_schema_extra=_allowed(f"{ID_RULE}; `{SHARED_OCCURRENCE_ID}` is reserved"),
    )
    agent_occurrence_count: int | None = Field(
        default=None,
        ge=1,
        validation_alias=AliasChoices(
            ENV_PREFIX + "AGENT_OCCURRENCE_COUNT",
            "AGENT_OCCURRENCE_COUNT",
        ),
        description="How many occurrences the decider waits for before it snapshots the "
        "canary groups; fewer after `COORDINATOR_DISCOVERY_GRACE` is recorded as a "
        "shortfall. Set it to the fleet's size; unset, the decider always waits the whole "
        "grace period.",
    )
    poll_interval: Interval = Field(
        default=1.0,
        description="How often an occurrence reads the fleet's state: the signalling "
        "mechanism, so it bounds how fast signals, rollouts and commands are seen. Lower "
        "it for faster reactions at the price of more database reads.",
    )
    heartbeat_interval: Interval = Field(
        default=5.0,
        description="How often an occurrence writes a heartbeat to prove it is alive. "
        "Change it together with `COORDINATOR_MEMBER_TTL`, which must stay above it.",
    )
    member_ttl: Duration = Field(
        default=30.0,
        description="A member whose last heartbeat is older than this counts as dead. "
        "Raise it if slow hosts or database pauses make live members look dead; lower it "
        "to notice a crashed occurrence sooner.",
    )
    lease_ttl: Duration = Field(
        default=15.0,
        description="Lifetime of the lease on a claimed shared task and on a rollout's "
        "driver role; the holder renews it, and another occurrence takes over once it "
        "lapses. Lower it for a faster takeover after a crash.",
    )
    explorer_soak: Wait = Field(
        default=30.0,
        description="How long a rollout waits after signalling the explorer (its first "
        "wave) before the wave's health gate. Raise it when a bad version takes longer "
        "to show.",
    )
    early_adopter_soak: Wait = Field(
        default=60.0,
        description="How long a rollout waits after signalling the early adopters before "
        "their health gate. Raise it when a bad version takes longer to show.",
    )
    health_timeout: Duration = Field(
        default=300.0,
        description="How long a wave's health gate keeps checking before the wave fails "
        "(and the rollout with it). Raise it when occurrences take long to reach the "
        "signalled state.",
    )
    health_poll: Interval = Field(
        default=5.0,
        description="How often a health gate checks the members of its wave. Lower it "
        "for a gate that passes sooner after the members are ready.",
    )
    early_adopter_fraction: float = Field(
        default=0.3,
        gt=0,
        lt=1,
        description="The share of the fleet in the early-adopter wave: "
        "`max(1, int(total * fraction))` occurrences (of 9: 1 explorer, 2 early adopters, "
        "6 general). Raise it for a larger second wave.",
    )
    min_serving_fraction: float = Field(
        default=0.8,
        ge=0,
        lt=1,
        description="The share of a shutdown's planned members that keeps serving until its "
        "last wave: at least `ceil(fraction * N)` of N; the shutdown's early adopters are cut "
        "to fit and join the general wave (of 9: 1 / 0 / 8). 0 keeps the canary groups as "
        "they are; wakeups are never cut.",
    )
    decision_window: Window = Field(
        default=86400.0,
        description="A wakeup decided within this window, and not followed by an accepted "
        "shutdown, is joined by occurrences that start later instead of being decided "
        "again. Lower it if a restart some hours later should be decided anew.",
    )
    discovery_grace: Wait = Field(
        default=10.0,
        description="How long a decider waits for `COORDINATOR_AGENT_OCCURRENCE_COUNT` "
        "occurrences before it snapshots the groups with whoever is live. Raise it when "
        "the occurrences of a fleet start far apart.",
    )
    decision_timeout: Duration = Field(
        default=120.0,
        description="How long the decision engine may take to answer one request; then "
        "the decider gives the claim back and another attempt decides, so a hung engine "
        "never holds a decision up for longer. Raise it for an engine that is slow "
        "by design.",
    )
    engine: str | None = Field(
        default=None,
        description="`run`'s decision engine as `package.module:attribute` (an instance, "
        "a class or a factory); unset, the built-in engine accepts every request. One "
        "that does not load does not stop `run`: the occurrence runs the built-in engine, "
        "records why, and never claims a decision.",
        json_schema_extra=_allowed("`package.module:attribute` (checked when `run` loads it)"),
    )
    trusted_keys: str = Field(
        default="",
        description="Comma-separated Ed25519 public keys trusted to sign emergency "
        "commands, each a file (the `.pub` of `keys generate`, or a PEM public key) or "
        "the key's base64; unset, every emergency command is refused. Set it on every "
        "occurrence and `serve` to enable emergency stops; a bad entry stops `run` at "
        "start-up.",
    )
    emergency_max_age: Duration = Field(
        default=300.0,
        description="An emergency command recorded more than this after it was issued is "
        "refused as expired (one dated more than 30 s in the future too). Raise it only "
        "if commands are signed well before they are sent.",
    )
    api_allowed_hosts: str = Field(
        default="",
        description="Comma-separated host names `serve` answers to besides IP addresses, "
        "`localhost` and its `--host`; a request naming any other host is refused (a guard "
        "against DNS rebinding). List the names clients use, e.g. behind a proxy.",
    )
    api_token: SecretStr | None = Field(
        default=None,
        description="The bearer token `serve` demands on every route that changes the "
        "fleet (surrounding whitespace is dropped; e.g. `openssl rand -hex 32`); unset, "
        "`serve` refuses to start unless `--read-only`. Environment only: never a flag, "
        "never shown by diagnostics or logs.",
        json_schema_extra=_allowed(f"at least {MIN_TOKEN_LENGTH} characters (checked by `serve`)"),
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
        for longer, (shorter, why) in MUST_EXCEED.items():
            if getattr(self, longer) <= getattr(self, shorter):
                raise ValueError(
                    f"{setting_env_name(longer)} ({getattr(self, longer)}) must exceed "
                    f"{setting_env_name(shorter)} ({getattr(self, shorter)}), {why}"
                )
        return self


SECRET_SETTINGS = frozenset(
    name
    for name, field in Settings.model_fields.items()
    if SecretStr in (field.annotation, *get_args(field.annotation))
)
"""Settings that hold a secret: read from the environment only (a command-line flag
would show in ``ps``), and never shown."""


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
