"""docs/settings.md is what the settings model gives, and the model documents every setting."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import Field

from coordinator.settings_reference import GROUPS, SettingsReferenceError, main, render
from schemas import Settings

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "settings.md"


def test_docs_settings_md_is_what_the_model_gives() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render(), (
        "docs/settings.md is stale: regenerate it with python scripts/settings_reference.py"
    )


def test_every_setting_has_a_section_with_its_variable_and_default() -> None:
    text = render()
    for name in Settings.model_fields:
        assert f"### `COORDINATOR_{name.upper()}`" in text, name


def test_the_rendering_is_deterministic() -> None:
    assert render() == render()


class _Undescribed(Settings):
    new_knob: float = 1.0


def test_a_setting_without_a_description_is_refused() -> None:
    groups = (*GROUPS, ("New", ("new_knob",)))
    with pytest.raises(SettingsReferenceError, match=r"without a description.*new_knob"):
        render(_Undescribed, groups)


class _Ungrouped(Settings):
    new_knob: float = Field(default=1.0, description="Does something new.")


def test_a_setting_in_no_group_is_refused() -> None:
    with pytest.raises(SettingsReferenceError, match="in no group: new_knob"):
        render(_Ungrouped, GROUPS)


def test_a_group_naming_no_setting_is_refused() -> None:
    with pytest.raises(SettingsReferenceError, match="not a setting: gone"):
        render(Settings, (*GROUPS, ("Old", ("gone",))))


def test_check_fails_on_a_stale_file_and_names_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "settings.md"
    target.write_text(render().replace("Default: `1`", "Default: `2`"), encoding="utf-8")

    assert main(["--check"], target) == 1
    assert "stale" in capsys.readouterr().err
    assert target.read_text(encoding="utf-8") != render()  # --check writes nothing


def test_check_fails_on_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"], tmp_path / "settings.md") == 1
    assert "missing" in capsys.readouterr().err


def test_writing_then_checking_passes(tmp_path: Path) -> None:
    target = tmp_path / "settings.md"
    assert main([], target) == 0
    assert main(["--check"], target) == 0
    assert target.read_text(encoding="utf-8") == render()


def test_the_script_checks_the_repository_file() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_reference.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


# Variables the test suite reads, not the coordinator: no settings, so not in the reference.
TEST_ONLY_VARIABLES = {"COORDINATOR_TEST_POSTGRES_URL", "COORDINATOR_REQUIRE_SPIN"}


@pytest.mark.parametrize(
    "page", ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
)
def test_every_coordinator_variable_the_docs_name_is_a_setting(page: str) -> None:
    """A renamed or removed setting cannot linger in the prose around the reference."""
    named = set(re.findall(r"COORDINATOR_[A-Z_]+[A-Z]", (ROOT / page).read_text()))
    known = {f"COORDINATOR_{name.upper()}" for name in Settings.model_fields}
    assert named - known - TEST_ONLY_VARIABLES == set()


def test_the_readme_links_only_to_sections_the_reference_has() -> None:
    readme = (ROOT / "README.md").read_text()
    anchors = re.findall(r"\]\(docs/settings\.md#([a-z_]+)\)", readme)
    assert anchors, "the README's settings excerpt links to docs/settings.md"
    headings = set(re.findall(r"^### `([A-Z_]+)`$", render(), flags=re.MULTILINE))
    assert {anchor.upper() for anchor in anchors} <= headings
