"""Translate botocore failures into durable-graph errors, once, at the adapter boundary.

The engine and the worker decide what to do from the error *type* (see `durable_graph.errors`):
throttling, timeouts, 5xx answers and transactions cancelled by a conflict become
`TransientError` (retry: SQS redelivers); anything else (access denied, missing table,
validation) becomes `AwsRequestFailed`, which the worker treats like a bug — retried a few
times, then the message goes to the DLQ and the thread is failed with the reason. Lost
conditions are not translated here: each adapter turns its own
`ConditionalCheckFailedException` / `PreconditionFailed` into a domain result.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from durable_graph.errors import DurableGraphError, TransientError

__all__ = [
    "AwsRequestFailed",
    "AwsUnavailable",
    "cancellation_reasons",
    "error_code",
    "translate",
]

# Codes AWS documents as "try again": throttling, capacity, internal errors.
RETRYABLE_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestTimeout",
        "ServiceUnavailable",
        "SlowDown",
        "ThrottledException",
        "Throttling",
        "ThrottlingException",
        "TransactionConflictException",
        "KMSThrottlingException",
        "ConditionalRequestConflict",  # S3: a concurrent conditional write of the same key
    }
)

# Per-item reasons of a cancelled DynamoDB transaction that mean "try again": another
# transaction held one of the items, or capacity ran out.
RETRYABLE_CANCELLATION_REASONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)


class AwsUnavailable(TransientError):
    """AWS did not answer, or asked us to slow down: retry later."""

    code = "aws_unavailable"


class AwsRequestFailed(DurableGraphError):
    """AWS refused the request for a reason retrying will not fix soon (permissions, missing
    resource, invalid parameter). Carries the AWS error code."""

    code = "aws_error"

    def __init__(self, message: str, *, aws_code: str) -> None:
        super().__init__(message)
        self.aws_code = aws_code


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def cancellation_reasons(exc: ClientError) -> list[str]:
    """The per-item reason codes of a `TransactionCanceledException`, in request order ("None"
    for an item that was fine); empty for any other error."""
    if error_code(exc) != "TransactionCanceledException":
        return []
    reasons: Any = exc.response.get("CancellationReasons")  # DynamoDB sends them beside Error
    if not isinstance(reasons, list):
        return []
    return [str(r.get("Code", "None")) if isinstance(r, dict) else "None" for r in reasons]


def translate(exc: ClientError | BotoCoreError, action: str) -> DurableGraphError:
    """The durable-graph error for a failed AWS call; the caller raises it `from exc`."""
    if isinstance(exc, BotoCoreError):  # connection reset, read timeout, DNS: no answer at all
        return AwsUnavailable(f"{action}: no answer from AWS ({type(exc).__name__}: {exc})")
    code = error_code(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    message = exc.response.get("Error", {}).get("Message", "")
    retryable_cancel = any(
        reason in RETRYABLE_CANCELLATION_REASONS for reason in cancellation_reasons(exc)
    )
    if code in RETRYABLE_CODES or status >= 500 or retryable_cancel:
        return AwsUnavailable(f"{action}: {code or status} {message}".strip())
    return AwsRequestFailed(f"{action}: {code} {message}".strip(), aws_code=code)
