"""Every setting is a flag of ``run``, except secrets: a command line shows in ``ps``."""

from __future__ import annotations

import pytest

from coordinator.cli import build_parser
from schemas import Settings
from schemas.settings import SECRET_SETTINGS


def test_the_api_token_is_a_secret_setting() -> None:
    assert "api_token" in SECRET_SETTINGS


def test_run_has_a_flag_for_every_setting_but_the_secrets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    shown = capsys.readouterr().out

    for name in Settings.model_fields.keys() - SECRET_SETTINGS - {"database_url"}:
        assert f"--{name.replace('_', '-')}" in shown, name
    assert "--api-token" not in shown


def test_run_refuses_a_secret_given_as_a_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["run", "--api-token", "t0ken-t0ken-t0ken"])

    assert exited.value.code == 2
    assert "unrecognized arguments: --api-token" in capsys.readouterr().err
