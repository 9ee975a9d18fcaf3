"""The circuit breaker behind passive ejection, with an injected clock."""

from gateway.health import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_when_failures_reach_the_threshold_then_the_circuit_opens_for_the_cooldown():
    clock = Clock()
    b = CircuitBreaker(threshold=3, cooldown=10, clock=clock)
    b.failure()
    b.failure()
    assert b.available()
    b.failure()
    assert b.state is BreakerState.OPEN and not b.available()
    clock.now += 9.9
    assert not b.available()


def test_when_the_cooldown_passes_then_exactly_one_trial_goes_through():
    clock = Clock()
    b = CircuitBreaker(threshold=1, cooldown=5, clock=clock)
    b.failure()
    clock.now += 5
    assert b.available()
    b.acquire()
    assert not b.available()  # the trial is out: nobody else
    b.success()
    assert b.state is BreakerState.CLOSED and b.available()


def test_when_the_trial_fails_then_the_circuit_opens_again():
    clock = Clock()
    b = CircuitBreaker(threshold=2, cooldown=5, clock=clock)
    b.failure()
    b.failure()
    clock.now += 6
    assert b.available()
    b.acquire()
    b.failure()
    assert b.state is BreakerState.OPEN and not b.available()


def test_when_a_trial_is_cancelled_then_the_slot_is_freed():
    clock = Clock()
    b = CircuitBreaker(threshold=1, cooldown=1, clock=clock)
    b.failure()
    clock.now += 2
    assert b.available()
    b.acquire()
    b.release()
    assert b.available()


def test_when_a_success_comes_between_failures_then_the_count_restarts():
    b = CircuitBreaker(threshold=2, cooldown=1, clock=Clock())
    b.failure()
    b.success()
    b.failure()
    assert b.state is BreakerState.CLOSED
