"""``COORDINATOR_ENGINE``: what loads, and for each way a name fails to load, the built-in
engine instead with the failure recorded (``EngineIdentity.error``)."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from coordinator import AcceptingEngine, ScriptedEngine
from coordinator.engine_loader import identify, load_engine
from schemas import BUILTIN_ENGINE_NAME, EngineIdentity, EngineKind, EngineLoadFailure

ENGINE_CLASS = """
from coordinator import EngineAnswer

class Engine:
    async def decide(self, request):
        return EngineAnswer(accept=False, reason="the agent says no")

instance = Engine()

def factory():
    return Engine()

def broken_factory():
    raise RuntimeError("no model configured")

class SyncEngine:
    def decide(self, request):
        return None

not_an_engine = 42
"""
_names = itertools.count()

WriteModule = Callable[[str], str]


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WriteModule]:
    """Write a module importable by the name it returns (unique: imports are cached)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    written: list[str] = []

    def write(source: str) -> str:
        name = f"engine_under_test_{next(_names)}"
        (tmp_path / f"{name}.py").write_text(source)
        written.append(name)
        return name

    yield write
    for name in written:
        sys.modules.pop(name, None)


def test_unset_is_the_builtin_engine_with_no_error() -> None:
    for unset in (None, ""):
        loaded = load_engine(unset)
        assert isinstance(loaded.engine, AcceptingEngine)
        assert loaded.identity == EngineIdentity(kind=EngineKind.BUILTIN, name=BUILTIN_ENGINE_NAME)
        assert loaded.failure is None


@pytest.mark.parametrize("attribute", ["Engine", "instance", "factory"])
def test_a_class_an_instance_or_a_factory_loads_as_external(
    write_module: WriteModule, attribute: str
) -> None:
    spec = f"{write_module(ENGINE_CLASS)}:{attribute}"

    loaded = load_engine(spec)

    assert type(loaded.engine).__name__ == "Engine"
    assert loaded.identity == EngineIdentity(kind=EngineKind.EXTERNAL, name=spec)
    assert loaded.failure is None and loaded.source == spec


def assert_falls_back(spec: str, failure: EngineLoadFailure, *needles: str) -> None:
    loaded = load_engine(spec)

    assert isinstance(loaded.engine, AcceptingEngine), "the built-in engine runs instead"
    assert loaded.failure is not None and loaded.failure.failure is failure
    identity = loaded.identity
    assert (identity.kind, identity.name) == (EngineKind.BUILTIN, BUILTIN_ENGINE_NAME)
    assert identity.error is not None and identity.error.startswith(f"{failure.value}: ")
    for needle in needles:
        assert needle in identity.error, identity.error
    assert str(loaded.failure).startswith("COORDINATOR_ENGINE: ")  # as the log says it


@pytest.mark.parametrize("spec", ["no_colon", ":Engine", "pkg.module:", "pkg.module"])
def test_a_malformed_name(spec: str) -> None:
    assert_falls_back(spec, EngineLoadFailure.MALFORMED_NAME, repr(spec))


def test_a_missing_module() -> None:
    assert_falls_back(
        "no_such_agent.engine:Engine", EngineLoadFailure.MODULE_MISSING, "'no_such_agent.engine'"
    )


def test_a_module_that_imports_a_missing_one(write_module: WriteModule) -> None:
    name = write_module("import no_such_dependency\n")
    assert_falls_back(f"{name}:Engine", EngineLoadFailure.MODULE_MISSING, "no_such_dependency")


def test_a_module_that_raises_when_imported(write_module: WriteModule) -> None:
    name = write_module("raise RuntimeError('API key not set')\n")
    assert_falls_back(
        f"{name}:Engine", EngineLoadFailure.IMPORT_FAILED, "API key not set", repr(name)
    )


def test_a_missing_attribute(write_module: WriteModule) -> None:
    name = write_module(ENGINE_CLASS)
    assert_falls_back(f"{name}:Missing", EngineLoadFailure.ATTRIBUTE_MISSING, "'Missing'")


def test_a_factory_that_raises(write_module: WriteModule) -> None:
    name = write_module(ENGINE_CLASS)
    assert_falls_back(
        f"{name}:broken_factory", EngineLoadFailure.FACTORY_FAILED, "no model configured"
    )


@pytest.mark.parametrize(
    ("attribute", "type_name"), [("not_an_engine", "int"), ("SyncEngine", "SyncEngine")]
)
def test_something_without_an_async_decide(
    write_module: WriteModule, attribute: str, type_name: str
) -> None:
    name = write_module(ENGINE_CLASS)
    assert_falls_back(
        f"{name}:{attribute}", EngineLoadFailure.NOT_AN_ENGINE, f"gave {type_name}", "decide"
    )


def test_an_engine_handed_to_the_runtime_is_identified_by_its_class() -> None:
    assert identify(AcceptingEngine()) == EngineIdentity.builtin()
    assert identify(ScriptedEngine()) == EngineIdentity(
        kind=EngineKind.EXTERNAL, name="coordinator.engine:ScriptedEngine"
    )
