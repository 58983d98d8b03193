"""The ports (DESIGN.md §2): core code depends on these Protocols only; backends implement them,
and one conformance suite (`tests/conformance/`) runs against every implementation.

One module per port, each with the optional capabilities a backend may add to it:
`checkpoint_store` (with `commit_writes`), `payload_store`, `leftovers`, `transition_queue`
(with `send_leases` and `poison`) and `notifier`. Import a name from its module.
"""
