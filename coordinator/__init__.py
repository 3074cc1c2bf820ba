"""coordinator: one decision per lifecycle change for the N occurrences of one agent,
rolled out in canary waves (explorer -> early adopters -> general) with health gates."""

from coordinator.clock import Clock, FakeClock, ScaledClock, SystemClock
from coordinator.engine import (
    AcceptingEngine,
    DecisionEngine,
    DecisionRequest,
    EngineAnswer,
    ScriptedEngine,
)
from coordinator.hooks import LifecycleHooks, WaveContext
from coordinator.policy.groups import assign_canary_groups, natural_key
from coordinator.runtime import PROTOCOL_VERSION, OccurrenceRuntime
from schemas import OccurrenceState, Settings, load_settings

__version__ = "0.1.0"

__all__ = [
    "PROTOCOL_VERSION",
    "AcceptingEngine",
    "Clock",
    "DecisionEngine",
    "DecisionRequest",
    "EngineAnswer",
    "FakeClock",
    "LifecycleHooks",
    "OccurrenceRuntime",
    "OccurrenceState",
    "ScaledClock",
    "ScriptedEngine",
    "Settings",
    "SystemClock",
    "WaveContext",
    "__version__",
    "assign_canary_groups",
    "load_settings",
    "natural_key",
]
