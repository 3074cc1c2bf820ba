"""The retry policies wait as their names say: doubling or growing, never past the cap."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from tenacity import RetryCallState, Retrying

from persistence.retry import RECONNECT, SCHEMA, TRANSACTION, WAL_SWITCH, RetryPolicy


def waits(policy: RetryPolicy, count: int) -> list[float]:
    """The waits after the first ``count`` failed attempts."""
    wait = policy.wait()
    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    found = []
    for number in range(1, count + 1):
        state.attempt_number = number
        found.append(round(wait(state), 6))
    return found


def test_a_transaction_waits_doubling_from_50_ms_up_to_a_second() -> None:
    assert waits(TRANSACTION, 7) == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert TRANSACTION.attempts == 8


def test_creating_the_schema_waits_20_ms_longer_each_time_up_to_half_a_second() -> None:
    assert waits(SCHEMA, 3) == [0.02, 0.04, 0.06]
    assert waits(SCHEMA, 49)[-1] == 0.5
    assert SCHEMA.attempts == 50


def test_the_wal_switch_waits_20_ms_each_time_and_reconnecting_never_stops() -> None:
    assert set(waits(WAL_SWITCH, 49)) == {0.02}
    assert waits(RECONNECT, 6) == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert RECONNECT.attempts is None


@given(
    first=st.floats(0.001, 5.0),
    cap=st.floats(0.001, 60.0),
    doubling=st.booleans(),
    count=st.integers(1, 80),
)
def test_waits_never_shrink_and_never_pass_the_cap(
    first: float, cap: float, doubling: bool, count: int
) -> None:
    found = waits(RetryPolicy(None, first, cap, doubling), count)
    assert all(0 <= wait <= round(cap, 6) for wait in found)
    assert found == sorted(found)
    assert found[0] == round(min(first, cap), 6)
