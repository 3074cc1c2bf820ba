"""Imports point down only: coordinator -> persistence -> schemas."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["schemas", "persistence", "coordinator"]  # bottom first


def imported_packages(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_no_layer_imports_one_above_it(layer: str) -> None:
    above = set(LAYERS[LAYERS.index(layer) + 1 :])
    modules = sorted((ROOT / layer).rglob("*.py"))
    assert modules, f"no modules found under {layer}/"
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & above)
        for path in modules
        if imported_packages(path) & above
    }
    assert offenders == {}


def test_sqlalchemy_stays_in_persistence() -> None:
    for layer in ("schemas", "coordinator"):
        for path in (ROOT / layer).rglob("*.py"):
            assert "sqlalchemy" not in imported_packages(path), path


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


IMPURE = ("persistence", "anyio", "asyncio", "sqlalchemy", "structlog", "time", "os", "socket")


@pytest.mark.parametrize("package", ["coordinator/policy", "schemas/policy"])
def test_the_policy_packages_hold_pure_rules_only(package: str) -> None:
    """No I/O, clock, logging or runtime module: a rule sees only what it is given."""
    modules = sorted((ROOT / package).rglob("*.py"))
    assert len(modules) > 2, f"no policy modules found under {package}/"
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m
            for m in imported_modules(path)
            if m.split(".")[0] in IMPURE
            or (m.startswith("coordinator") and not m.startswith("coordinator.policy"))
        )
        for path in modules
    }
    assert {path: bad for path, bad in offenders.items() if bad} == {}
