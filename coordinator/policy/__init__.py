"""Pure rules only the runtime uses (the store's rules are ``schemas.policy``)."""

from coordinator.policy.liveness import Liveness, liveness, observe

__all__ = ["Liveness", "liveness", "observe"]
