"""Messages a process sends while a worker of its own serves the queue, on every backend: they
carry their step's state only where the queue is not worked beside its store
(`ports.worked_queues`), and a worker runs them either way."""

from __future__ import annotations

from durable_graph.backend import Backend
from durable_graph.clock import ManualClock
from durable_graph.ports.worked_queues import is_worked_here
from examples.email_approval import graph as email_graph


def test_a_worker_here_runs_what_this_process_sends(backend: Backend, clock: ManualClock) -> None:
    """Given a worker of this process that has served the queue, when a thread is started,
    then its message carries the step's state unless the queue is worked beside its store,
    and the worker runs the thread to its suspension."""
    app = email_graph.with_backend(backend, clock=clock)
    worker = app.worker(concurrency=4)
    worker.run(until_idle=True)  # serves the queue; nothing is queued yet
    app.start({"user_prompt": "pay the supplier"}, thread_id="w-1")
    [delivery] = backend.queue.receive(max_messages=10, visibility_timeout=30)
    queue = backend.queue
    worked = is_worked_here(queue) and queue.worked_here
    assert (delivery.message.carried is None) is worked
    backend.queue.release(delivery)
    worker.run(until_idle=True)
    state = app.get_state("w-1")
    assert state.status == "suspended" and state.values["risk"] == "high"
