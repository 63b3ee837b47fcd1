"""Transfer orchestration: a request fans out into jobs; each job decides, builds,
delivers and records its outcome (DESIGN §1, R1–R3, R8, R10, R12).

* :mod:`.request` — the request and its fan-out into one job per listing and marketplace;
* :mod:`.outgoing` — what a transfer would send (decide, conditions, build, compare), for
  the job, preview, export and reconciliation alike;
* :mod:`.keys` — the document hash and the idempotency key of every delivery;
* :mod:`.feed_job` — a pull marketplace's whole feed, rebuilt and published per office
  (imported from there: it builds on :mod:`syndication.export`, which asks :mod:`.outgoing`);
* :mod:`.job` — one job, and the publication check that follows a ``sent``;
* :mod:`.lifecycle` — attempts counted in the store, worker deaths, giving up;
* :mod:`.progress` — how far a request has got, for ``transfer --wait`` and the demo.

The actors in :mod:`syndication.jobs.transfer` are thin wrappers over these.
"""

from syndication.transfer.common import JobRef, Scheduler
from syndication.transfer.job import (
    CONFIRM_POLLS,
    NOT_KNOWN_NOTE,
    JobOutcome,
    Prepared,
    carry_out,
    confirm_publication,
    deliver,
    finish,
    prepare,
    run_transfer_job,
)
from syndication.transfer.keys import document_hash, idempotency_key
from syndication.transfer.lifecycle import TRANSFER_LIFECYCLE, TransferLifecycle
from syndication.transfer.outgoing import Outgoing, outgoing
from syndication.transfer.progress import (
    LEFT_AS_WAS_WORDS,
    OUTCOME_WORDS,
    Failure,
    RequestOutcome,
    outcome_words,
    request_outcome,
    wait_for_request,
)
from syndication.transfer.request import RequestSummary, Scope, marketplaces_for, request_transfer
from syndication.transfer.starts import Start

__all__ = [
    "CONFIRM_POLLS",
    "LEFT_AS_WAS_WORDS",
    "NOT_KNOWN_NOTE",
    "OUTCOME_WORDS",
    "TRANSFER_LIFECYCLE",
    "Failure",
    "JobOutcome",
    "JobRef",
    "Outgoing",
    "Prepared",
    "RequestOutcome",
    "RequestSummary",
    "Scheduler",
    "Scope",
    "Start",
    "TransferLifecycle",
    "carry_out",
    "confirm_publication",
    "deliver",
    "document_hash",
    "finish",
    "idempotency_key",
    "marketplaces_for",
    "outcome_words",
    "outgoing",
    "prepare",
    "request_outcome",
    "request_transfer",
    "run_transfer_job",
    "wait_for_request",
]
