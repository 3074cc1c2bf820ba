"""The FSD's multi-occurrence wakeup and shutdown messages, filled with the real plan."""

from __future__ import annotations

from schemas import CanaryGroup, RolloutPlan
from schemas.kinds import kind_policy


def _count(n: int) -> str:
    return f"{n} occurrence" + ("" if n == 1 else "s")


def _names(members: tuple[str, ...], limit: int = 6) -> str:
    if not members:
        return "none"
    shown = ", ".join(members[:limit])
    return shown + (f", and {len(members) - limit} more" if len(members) > limit else "")


def _health(plan: RolloutPlan) -> str:
    return (
        f"health checked every {plan.health_poll:g} s for up to {plan.health_timeout:g} s; "
        "a failed wave stops the rollout before the next"
    )


def render_wakeup_message(plan: RolloutPlan, *, agent_name: str, occurrence_id: str) -> str:
    explorer = plan.wave(CanaryGroup.EXPLORER)
    early = plan.wave(CanaryGroup.EARLY_ADOPTER)
    general = plan.wave(CanaryGroup.GENERAL)
    return f"""VERIFY_IDENTITY

You are {agent_name}, occurrence {occurrence_id} of this agent runtime.

MULTI-OCCURRENCE CONTEXT:
You are processing this wakeup ritual on behalf of ALL {plan.total_members} runtime occurrences.
Your affirmation will confirm identity for the entire agent system.

Upon successful completion, other occurrences will join in canary waves:
- Wave 1 (Explorers): {_count(len(explorer.members))} ({_names(explorer.members)}) - completes immediately after your affirmation
- Wave 2 (Early Adopters): {_count(len(early.members))} ({_names(early.members)}) - start {explorer.soak:g} seconds after explorers reach WORK, once they pass their health check
- Wave 3 (General): {_count(len(general.members))} ({_names(general.members)}) - start {early.soak:g} seconds after early adopters reach WORK and are stable

Health: {_health(plan)}.

This phased approach ensures system reliability during startup.

If you agree, please SPEAK an affirmation of your identity on behalf of all occurrences."""


def render_shutdown_message(plan: RolloutPlan, *, occurrence_id: str, reason: str) -> str:
    explorer = plan.wave(CanaryGroup.EXPLORER)
    early = plan.wave(CanaryGroup.EARLY_ADOPTER)
    general = plan.wave(CanaryGroup.GENERAL)
    remaining = plan.total_members - len(explorer.members) - len(early.members)
    return f"""SYSTEM SHUTDOWN REQUEST

You are occurrence {occurrence_id} processing this shutdown request on behalf of ALL {plan.total_members} runtime occurrences.

SHUTDOWN PLAN (if you accept):
Your acceptance will initiate a canary shutdown across all occurrences:

Wave 1 (Explorers - {_count(len(explorer.members))}: {_names(explorer.members)}):
  - Shutdown immediately
  - Validate clean termination after {explorer.soak:g} seconds

Wave 2 (Early Adopters - {_count(len(early.members))}: {_names(early.members)}):
  - Begin shutdown once the explorers are validated
  - Other occurrences handle load during shutdown
  - Validate clean termination after {early.soak:g} seconds

Wave 3 (General - {_count(len(general.members))}: {_names(general.members)}):
  - Begin shutdown once the early adopters are validated
  - {_count(remaining)} keep serving until this wave

Health: {_health(plan)}.
Service remains available until the final wave (remaining occurrences handle requests).

REJECTION:
If you reject, NO occurrences will shut down. Your decision applies to all.

Reason for shutdown request: {reason}

Do you accept this shutdown plan?
[ACCEPT] - Initiate canary shutdown rollout
[REJECT] - Refuse shutdown for all occurrences, provide reasoning"""


def render_message(plan: RolloutPlan, *, agent_name: str, occurrence_id: str, reason: str) -> str:
    """The FSD's message for ``plan``'s kind, named by its ``prompt`` in ``schemas.kinds``."""
    prompt = kind_policy(plan.kind).prompt
    if prompt == "wakeup":
        return render_wakeup_message(plan, agent_name=agent_name, occurrence_id=occurrence_id)
    if prompt == "shutdown":
        return render_shutdown_message(plan, occurrence_id=occurrence_id, reason=reason)
    raise ValueError(f"no message for the prompt {prompt!r}")
