"""``docs/settings.md``, rendered from the settings model (``schemas/settings.py``).

The model is the one source: names, aliases, types, defaults and ranges are read from
its fields, the explanations from their ``description``. A setting without one, or in
no group below, is refused rather than rendered half-documented.
``scripts/settings_reference.py`` writes the file; ``--check`` fails when it is stale.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

import annotated_types
from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from coordinator.cli.options import setting_flag
from schemas.settings import MUST_EXCEED, SecondsRange, Settings, plain_number, setting_env_name

REGENERATE = "python scripts/settings_reference.py"

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Database and identity", ("database_url", "fleet_id", "occurrence_id")),
    (
        "Polling and liveness",
        ("poll_interval", "heartbeat_interval", "member_ttl", "lease_ttl"),
    ),
    (
        "Decisions",
        (
            "agent_occurrence_count",
            "discovery_grace",
            "decision_window",
            "decision_timeout",
            "engine",
        ),
    ),
    (
        "Rollout waves",
        (
            "early_adopter_fraction",
            "min_serving_fraction",
            "explorer_soak",
            "early_adopter_soak",
            "health_timeout",
            "health_poll",
        ),
    ),
    ("Emergency stop", ("trusted_keys", "emergency_max_age")),
    ("Control API (`serve`)", ("api_token", "api_allowed_hosts")),
)
"""Sections of the reference, in order; every setting of the model is in exactly one."""

_INTRO = f"""\
# Settings reference

<!-- Generated from schemas/settings.py by `{REGENERATE}`; do not edit by hand. -->

Every setting is read from an environment variable with the prefix `COORDINATOR_`;
`run` also takes each one as a flag (`--poll-interval 0.5` for
`COORDINATOR_POLL_INTERVAL`), which wins over the environment. Secrets have no flag: a
command line is visible to every user of the host in `ps`, so they come from the
environment only. Where a setting is read from several variables, the first one listed
that is set wins. Durations are seconds and must be finite; text must be valid UTF-8.
An invalid value stops the process at start-up with one message naming every offending
setting and its range.
"""

_TYPE_NAMES: dict[Any, str] = {
    str: "text",
    int: "integer",
    float: "number",
    SecretStr: "text (secret)",
}


class SettingsReferenceError(ValueError):
    """The model cannot be rendered: a setting lacks a description or a group."""


def env_names(name: str, field: FieldInfo) -> list[str]:
    """The variables a setting is read from, in the order the model tries them."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    if isinstance(alias, str):
        return [alias]
    return [setting_env_name(name)]


def type_text(field: FieldInfo) -> str:
    if any(isinstance(rule, SecondsRange) for rule in field.metadata):
        return "seconds"
    annotation = field.annotation
    optional = False
    if get_origin(annotation) in (Union, UnionType):
        members = [arg for arg in get_args(annotation) if arg is not NoneType]
        optional = len(members) < len(get_args(annotation))
        annotation = members[0] if len(members) == 1 else annotation
    text = _TYPE_NAMES.get(annotation, str(annotation))
    return f"{text}, optional" if optional else text


def default_text(field: FieldInfo) -> str:
    default = field.default
    if default is None or default == "":  # both mean "not set" to the code reading them
        return "unset"
    if isinstance(default, float):
        return f"`{plain_number(default)}`"
    return f"`{default}`"


_BOUND_WORDS = (
    (annotated_types.Gt, "gt", "greater than"),
    (annotated_types.Ge, "ge", "at least"),
    (annotated_types.Lt, "lt", "less than"),
    (annotated_types.Le, "le", "at most"),
)


def allowed_text(name: str, field: FieldInfo) -> str:
    """Every rule the model puts on the value, in words; empty when it takes any."""
    rules: list[str] = []
    for rule in field.metadata:
        if isinstance(rule, SecondsRange):
            rules.append(f"{rule} seconds")
        for kind, attribute, words in _BOUND_WORDS:
            if isinstance(rule, kind):
                rules.append(f"{words} {plain_number(getattr(rule, attribute))}")
    if name in MUST_EXCEED:
        rules.append(f"must exceed `{setting_env_name(MUST_EXCEED[name][0])}`")
    rules.extend(
        f"must stay below `{setting_env_name(longer)}`"
        for longer, (shorter, _) in MUST_EXCEED.items()
        if shorter == name
    )
    extra = field.json_schema_extra
    if isinstance(extra, dict) and "allowed" in extra:
        rules.append(str(extra["allowed"]))
    return "; ".join(rules)


def _check_model(model: type[BaseSettings], groups: Sequence[tuple[str, Sequence[str]]]) -> None:
    fields = model.model_fields
    undescribed = [name for name, field in fields.items() if not (field.description or "")]
    if undescribed:
        raise SettingsReferenceError(
            "settings without a description (add description= to the field in "
            f"schemas/settings.py: what it does and when to change it): {', '.join(undescribed)}"
        )
    grouped = [name for _, names in groups for name in names]
    ungrouped = [name for name in fields if name not in grouped]
    unknown = [name for name in grouped if name not in fields]
    twice = sorted({name for name in grouped if grouped.count(name) > 1})
    if ungrouped or unknown or twice:
        problems = [
            f"{label}: {', '.join(names)}"
            for label, names in (
                ("in no group", ungrouped),
                ("not a setting", unknown),
                ("in two groups", twice),
            )
            if names
        ]
        raise SettingsReferenceError(
            "GROUPS in coordinator/settings_reference.py must name every setting once ("
            + "; ".join(problems)
            + ")"
        )


def _setting_section(name: str, field: FieldInfo) -> list[str]:
    names = env_names(name, field)
    lines = [f"### `{names[0]}`", "", str(field.description), ""]
    lines.append(f"- Type: {type_text(field)}")
    lines.append(f"- Default: {default_text(field)}")
    allowed = allowed_text(name, field)
    if allowed:
        lines.append(f"- Allowed: {allowed}")
    if len(names) > 1:
        lines.append("- Also read from: " + ", ".join(f"`{other}`" for other in names[1:]))
    flag = setting_flag(name)
    lines.append(f"- Flag of `run`: `{flag}`" if flag else "- Flag: none (environment only)")
    return [*lines, ""]


def render(
    model: type[BaseSettings] = Settings,
    groups: Sequence[tuple[str, Sequence[str]]] = GROUPS,
) -> str:
    """The whole reference as Markdown; the same model always gives the same text."""
    _check_model(model, groups)
    fields = model.model_fields
    lines = [_INTRO, "| setting | type | default |", "|---|---|---|"]
    for _, names in groups:
        for name in names:
            env = env_names(name, fields[name])[0]
            anchor = env.lower()  # GitHub's anchor of the heading "### `ENV`"
            lines.append(
                f"| [`{env}`](#{anchor}) | {type_text(fields[name])} "
                f"| {default_text(fields[name])} |"
            )
    lines.append("")
    for title, names in groups:
        lines.extend([f"## {title}", ""])
        for name in names:
            lines.extend(_setting_section(name, fields[name]))
    return "\n".join(lines).rstrip("\n") + "\n"


def _shown(path: Path) -> str:
    """``path`` as the user would type it from here: relative when it is below."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None, target: Path) -> int:
    parser = argparse.ArgumentParser(
        prog="settings_reference.py", description=f"Write {target.name} from the settings model."
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the file is not what the model gives",
    )
    args = parser.parse_args(argv)
    text = render()
    shown = _shown(target)
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != text:
            state = "is missing" if current is None else "is stale"
            print(
                f"{shown} {state}: it is not what schemas/settings.py gives. "
                f"Regenerate it with: {REGENERATE}",
                file=sys.stderr,
            )
            return 1
        print(f"{shown} is up to date")
        return 0
    target.write_text(text, encoding="utf-8")
    print(f"wrote {shown}")
    return 0
