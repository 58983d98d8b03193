"""ThreadFailed: what it says, where it sits among the errors, what HTTP makes of it."""

from __future__ import annotations

from durable_graph import DurableGraphError, ThreadFailed, UserError
from durable_graph.api.errors import error_body, status_for
from durable_graph.checkpoint import ErrorInfo
from durable_graph.errors import PermanentTaskError, TransientError


def error(attempts: int) -> ErrorInfo:
    return ErrorInfo(
        node="classify", task_id="t-1", type="ValueError", message="boom", attempts=attempts
    )


def test_message_names_thread_step_node_error_and_attempts() -> None:
    failed = ThreadFailed("t1", 7, error(3))
    assert str(failed) == (
        "thread 't1' failed at step 7 in node 'classify': ValueError: boom (3 attempts); "
        "the thread stays failed and can be resumed"
    )
    assert (failed.thread_id, failed.step, failed.error) == ("t1", 7, error(3))
    assert "(1 attempt);" in str(ThreadFailed("t1", 7, error(1)))
    assert str(ThreadFailed("t1", 2, None)) == (
        "thread 't1' failed at step 2 (no error was recorded); "
        "the thread stays failed and can be resumed"
    )


def test_is_an_outcome_to_report_not_a_request_error_or_a_task_to_fail_or_retry() -> None:
    """A worker fails the thread on PermanentTaskError/UserError and retries TransientError:
    ThreadFailed must be none of them (it is already recorded)."""
    failed = ThreadFailed("t1", 7, error(3))
    assert isinstance(failed, DurableGraphError)
    assert not isinstance(failed, UserError | PermanentTaskError | TransientError)


def test_api_maps_it_to_409_thread_failed() -> None:
    failed = ThreadFailed("t1", 7, error(3))
    assert status_for(failed) == 409
    assert error_body(failed) == {"error": {"code": "thread_failed", "message": str(failed)}}
