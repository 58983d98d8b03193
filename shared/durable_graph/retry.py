"""Per-node retry policy, a frozen config like the durable-execution SDK's `RetryPolicy`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from durable_graph.errors import GraphInterrupt, UserError


def _default_retry_on(exc: BaseException) -> bool:
    """Retry what looks transient; a bug in input or a suspension is never retried."""
    return isinstance(exc, Exception) and not isinstance(
        exc, UserError | ValueError | TypeError | KeyError | AttributeError | GraphInterrupt
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How a node is retried in-process before the thread is failed.

    Attributes:
        max_attempts: total attempts including the first.
        initial_interval: seconds before the second attempt.
        backoff_factor: multiplier for each later interval.
        max_interval: ceiling of one wait.
        retry_on: exception types, or a predicate, that are worth another attempt.
    """

    max_attempts: int = 3
    initial_interval: float = 0.5
    backoff_factor: float = 2.0
    max_interval: float = 30.0
    retry_on: tuple[type[BaseException], ...] | Callable[[BaseException], bool] = _default_retry_on

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        if attempt >= self.max_attempts:
            return False
        if isinstance(self.retry_on, tuple):
            return isinstance(exc, self.retry_on)
        return self.retry_on(exc)

    def wait_before(self, attempt: int) -> float:
        """Seconds to wait before attempt `attempt + 1`."""
        return min(self.initial_interval * self.backoff_factor ** (attempt - 1), self.max_interval)
