"""Single source of truth for AWS resource attribute names and environment keys.

`infra/`, `functions/` and `tests/` all import these, so the CDK table, the moto table built in
tests and the adapters can never disagree about a key name.
"""

from __future__ import annotations

from typing import Final

# --- DynamoDB: one table holds checkpoints, thread records and small versioned records. ---
PARTITION_KEY: Final = "pk"  # "thread#<thread_id>" | LEFTOVERS_PARTITION
SORT_KEY: Final = "sk"  # "cp#<zero-padded step>" | "thread" | "rec#<key>"
STATUS_INDEX: Final = "by_status"  # GSI over thread records: which threads are running/suspended
STATUS_INDEX_PK: Final = "gsi1pk"  # "status#<status>"
STATUS_INDEX_SK: Final = "gsi1sk"  # ISO timestamp of the last status change
TTL_ATTRIBUTE: Final = "expires_at"
BODY_ATTRIBUTE: Final = "body"  # the record as compact JSON (checkpoint, thread record, CAS value)
VERSION_ATTRIBUTE: Final = "version"  # CAS counter of thread records (revision) and CAS records
# Thread records written by `advance_thread`: the head step its condition compares, and the
# creation time and origin it keeps (if_not_exists) while the body is replaced.
HEAD_STEP_ATTRIBUTE: Final = "head_step"
CREATED_ATTRIBUTE: Final = "created_at"
ORIGIN_ATTRIBUTE: Final = "origin"
COUNT_ATTRIBUTE: Final = "count"  # a completion counter (complete_task), incremented with ADD
CHECKPOINT_PREFIX: Final = "cp#"
THREAD_SORT_KEY: Final = "thread"
RECORD_PREFIX: Final = "rec#"
# The chunks of lost appends a function that may not delete payloads left for the sweeper
# (`leftovers.py`): one partition, sorted by when ("<ISO time>#<random>"). The sweeper's role
# may delete items of this partition alone (`Storage.grant_leftovers_forget`).
LEFTOVERS_PARTITION: Final = "leftovers"

# --- Environment keys read by the Lambda settings model. ---
ENV_TABLE: Final = "DURABLE_GRAPH_TABLE"
ENV_BUCKET: Final = "DURABLE_GRAPH_BUCKET"
ENV_QUEUE_URL: Final = "DURABLE_GRAPH_QUEUE_URL"
ENV_DLQ_URL: Final = "DURABLE_GRAPH_DLQ_URL"
ENV_TOPIC_ARN: Final = "DURABLE_GRAPH_TOPIC_ARN"
ENV_GRAPH: Final = "DURABLE_GRAPH_GRAPH"  # import path, e.g. "examples.email_approval:graph"
ENV_OFFLOAD_BYTES: Final = "DURABLE_GRAPH_OFFLOAD_BYTES"
ENV_STALE_SECONDS: Final = "DURABLE_GRAPH_STALE_SECONDS"  # the sweeper's window
ENV_SWEEP_MINUTES: Final = "DURABLE_GRAPH_SWEEP_MINUTES"  # the sweeper's schedule (rate)
# The payload collector's grace (`durable_graph.payload_gc`): objects put since are left.
ENV_GC_GRACE_SECONDS: Final = "DURABLE_GRAPH_GC_GRACE_SECONDS"
ENV_MAX_RECEIVES: Final = "DURABLE_GRAPH_MAX_RECEIVES"  # = the queue's redrive maxReceiveCount
ENV_SIGNING_KEY_PARAM: Final = "DURABLE_GRAPH_SIGNING_KEY_PARAM"  # SSM parameter holding HMAC key
ENV_WEBHOOK_SECRET_PARAM: Final = "DURABLE_GRAPH_WEBHOOK_SECRET_PARAM"
ENV_PUBLIC_BASE_URL: Final = "DURABLE_GRAPH_PUBLIC_BASE_URL"
ENV_LEDGER_KEY_ID: Final = "DURABLE_GRAPH_LEDGER_KEY_ID"  # KMS key that signs chain heads
# Optional, so not an ENV_* every function must have: the symmetric KMS key that wraps the
# per-thread data keys, turning encryption at rest on (keys.py). The stack creates it and grants
# kms:GenerateDataKey and kms:Decrypt with `-c encrypt_at_rest=true`; an operator may set it.
OPERATOR_ENV_DATA_KEY_ID: Final = "DURABLE_GRAPH_DATA_KEY_ID"
ENV_MAIL_FROM: Final = "DURABLE_GRAPH_MAIL_FROM"  # sender address of a verified SES identity
# Set ("true") on a function by the grant that lets it delete payload objects
# (`Storage.grant_payloads_delete`): only there are a lost step's chunks deleted (orphans.py);
# elsewhere they are left in the leftovers partition for the sweeper (leftovers.py).
GRANT_ENV_PAYLOAD_DELETES: Final = "DURABLE_GRAPH_PAYLOAD_DELETES"
# The explorer's sign-in (api function only): the Cognito user pool, its app client, the hosted
# UI's origin, and optionally where the pool's keys are (default: the issuer's JWKS).
ENV_EXPLORER_USER_POOL: Final = "DURABLE_GRAPH_EXPLORER_USER_POOL"
ENV_EXPLORER_CLIENT_ID: Final = "DURABLE_GRAPH_EXPLORER_CLIENT_ID"
ENV_EXPLORER_SIGNIN_URL: Final = "DURABLE_GRAPH_EXPLORER_SIGNIN_URL"
ENV_EXPLORER_JWKS_URL: Final = "DURABLE_GRAPH_EXPLORER_JWKS_URL"

# Payload objects live under this prefix, content-addressed: "sha256/ab/<hex digest>".
PAYLOAD_PREFIX: Final = "sha256/"
# Queue message bodies too large for SQS (the claim check, `sqs_queue.py`) live under their own
# prefix: no record names them, so the payload collector (`payload_gc.py`, which lists only
# `PAYLOAD_PREFIX`) must never see them while a message waits in the queue or its DLQ; the
# bucket's lifecycle rule expires them once the DLQ has dropped the message
# (`infra/components/storage.py`).
MESSAGE_PREFIX: Final = "messages/"

# The scheduled event that asks the sweeper function for the retention job instead of a sweep
# (`infra/stack.py` sends it; `functions/sweeper/handler.py` dispatches on `job`).
SWEEPER_JOB_KEY: Final = "job"
RETENTION_JOB: Final = "retention"
GC_JOB: Final = "gc"  # the payload collector (`durable-graph gc`), on its own schedule
