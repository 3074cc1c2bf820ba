"""Pure rules the store applies inside its write transactions (one module per family).

Each rule is a plain function of plain records (what the store read) to a decision (what
it writes, or why it refuses); no I/O, so each is tested without a database. The store
reads, calls the rule and writes in one transaction (``persistence.deciding``).
"""

from schemas.policy.decision_window import wakeup_in_force
from schemas.policy.emergency import FleetStopAbort, fleet_stop_aborts, fleet_stop_cancels
from schemas.policy.requests import RequestAnswer, RequestOutcome, answer_request
from schemas.policy.rollout_control import (
    ControlDecision,
    ControlView,
    RolloutEdit,
    abort_edit,
    action_event,
    decide_control,
)

__all__ = [
    "ControlDecision",
    "ControlView",
    "FleetStopAbort",
    "RequestAnswer",
    "RequestOutcome",
    "RolloutEdit",
    "abort_edit",
    "action_event",
    "answer_request",
    "decide_control",
    "fleet_stop_aborts",
    "fleet_stop_cancels",
    "wakeup_in_force",
]
