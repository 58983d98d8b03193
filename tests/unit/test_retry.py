"""RetryPolicy: attempts, backoff, and which errors are worth another attempt."""

from __future__ import annotations

import pytest

from durable_graph.errors import InvalidInput
from durable_graph.retry import RetryPolicy


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=5, initial_interval=1, backoff_factor=3, max_interval=5)
    assert [policy.wait_before(n) for n in (1, 2, 3)] == [1, 3, 5]


def test_default_retries_transient_but_not_bugs_or_bad_input() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(TimeoutError(), 1)
    assert policy.should_retry(ConnectionError(), 2)
    assert not policy.should_retry(TimeoutError(), 3)  # exhausted
    assert not policy.should_retry(KeyError("x"), 1)
    assert not policy.should_retry(InvalidInput("bad"), 1)


def test_explicit_exception_types() -> None:
    policy = RetryPolicy(max_attempts=2, retry_on=(ValueError,))
    assert policy.should_retry(ValueError(), 1)
    assert not policy.should_retry(TimeoutError(), 1)


def test_at_least_one_attempt() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
