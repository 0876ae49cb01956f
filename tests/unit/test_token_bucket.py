"""The token bucket (guide 22777-22816: rate + burst) driven by an injected clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openhi.errors import ValidationError
from openhi.throttling.bucket import TokenBucket


class FakeClock:
    """A monotonic clock moved by hand."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_a_new_bucket_allows_its_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=10, burst=20, clock=FakeClock())
    assert [bucket.try_take() for _ in range(21)] == [True] * 20 + [False]


def test_tokens_come_back_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=20, clock=clock)
    for _ in range(20):
        assert bucket.try_take()
    clock.advance(0.05)  # half a token
    assert not bucket.try_take()
    clock.advance(0.05)  # one token in all
    assert bucket.try_take()
    assert not bucket.try_take()
    clock.advance(0.35)
    assert [bucket.try_take() for _ in range(4)] == [True, True, True, False]


def test_refill_stops_at_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=5, burst=10, clock=clock)
    bucket.try_take(10)
    clock.advance(3600)
    assert bucket.tokens == 10
    assert [bucket.try_take() for _ in range(11)] == [True] * 10 + [False]


def test_the_guide_create_datastore_limit_allows_one_call_every_twelve_seconds() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=0.085, burst=1, clock=clock)
    assert bucket.try_take()
    clock.advance(11.7)
    assert not bucket.try_take()
    assert bucket.seconds_until() == pytest.approx(1 / 0.085 - 11.7)
    clock.advance(0.1)
    assert bucket.try_take()


def test_a_refused_take_takes_nothing_and_n_tokens_may_be_taken_at_once() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1, burst=3, clock=clock)
    assert not bucket.try_take(4)
    assert bucket.tokens == 3
    assert bucket.seconds_until(4) == float("inf")
    assert bucket.try_take(2.5)
    assert bucket.tokens == pytest.approx(0.5)
    assert bucket.seconds_until(1) == pytest.approx(0.5)


def test_a_clock_going_backwards_never_drains_or_fills() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1, burst=2, clock=clock)
    bucket.try_take(2)
    clock.advance(-50)
    assert bucket.tokens == 0
    clock.advance(1)
    assert bucket.tokens == pytest.approx(1)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (1, 0), (-1, 5), (float("nan"), 1)])
def test_rate_and_burst_must_be_positive(rate: float, burst: float) -> None:
    with pytest.raises(ValidationError):
        TokenBucket(rate, burst, FakeClock())


@given(
    rate=st.floats(min_value=0.01, max_value=1000),
    burst=st.integers(min_value=1, max_value=200),
    steps=st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=60),
)
def test_never_more_than_burst_plus_rate_times_elapsed(rate: float, burst: int, steps: list[float]) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate, burst, clock)
    granted = 0
    for step in steps:
        before = bucket.tokens
        clock.advance(step)
        in_step = 0
        while bucket.try_take():
            in_step += 1
        available = min(burst, before + rate * step)
        assert int(available - 1e-6) <= in_step <= int(available + 1e-6)  # every whole token, never above burst
        assert bucket.tokens < 1
        granted += in_step
    assert granted <= burst + rate * (clock.now - 100.0) + 1e-6
