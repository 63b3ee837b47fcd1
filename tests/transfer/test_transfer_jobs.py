"""Decision → job → status through dramatiq's StubBroker and a threaded Worker.

Real orchestration, feeds, rules and store; the marketplaces are FakeTransports.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq
import pytest
from factories import listing, office, user
from sqlalchemy import event
from transfer_helpers import Queue, assert_not_run, ingest, start_of_job

from syndication.errors import TransientError
from syndication.transfer import TRANSFER_LIFECYCLE, Scope, request_transfer
from syndication.transfer.common import JobRef
from syndication.transfer.job import run_transfer_job
from syndication.workers import WorkerIdentity, this_worker


def test_fan_out_one_job_per_licensed_or_selected_marketplace(queue: Queue) -> None:
    ingest(
        queue.engine,
        offices=[office(category_defaults={"villa": ["hemnet", "blocket"]}),
                 office("K2", licence=["hemnet"])],
        users=[user()],
        listings=[
            listing("O1", category="villa"),
            listing("O2", office_id="K2", marketplaces=["hemnet", "blocket"]),
        ],
    )
    summary = request_transfer(queue.runtime, Scope("all"), queue.scheduler)
    assert (summary.listings, summary.jobs, summary.recorded) == (2, 3, 2)
    queue.join()
    assert queue.states("O1") == {"hemnet": "published", "blocket": "published",
                                  "hittahem": "not_selected"}
    assert queue.states("O2") == {"hemnet": "published", "blocket": "not_licensed"}
    assert "licence change is needed" in queue.status("O2", "blocket").error
    assert queue.transports["hittahem"].deliveries == []
    assert queue.transports["blocket"].sent("O2") == []


def test_statuses_history_ids_and_confirmation(queue: Queue) -> None:
    ingest(queue.engine, offices=[office()], users=[user()], listings=[listing()])
    outcome = queue.transfer("object", "O1")
    assert outcome.finished and outcome.total == 3 and not outcome.failures
    hemnet = queue.status("O1", "hemnet")
    assert hemnet.state == "published" and hemnet.marketplace_id == "HEMNET-1"
    assert hemnet.action == "create" and hemnet.document_hash
    assert queue.history("O1", "hemnet") == ["queued", "queued", "sent", "published"]
    delivery = queue.transports["hemnet"].created("O1")[0]
    assert delivery.idempotency_key == f"O1:hemnet:create:{hemnet.document_hash[:16]}:0"
    assert b"<" in delivery.document


def test_sent_stays_sent_until_the_marketplace_publishes(queue: Queue) -> None:
    queue.transports["hemnet"].publish_on_lookup = False
    ingest(queue.engine, offices=[office()], users=[user()], listings=[listing()])
    outcome = queue.transfer()
    assert outcome.counts == {"sent": 1, "published": 1, "not_selected": 1}
    assert queue.status("O1", "hemnet").state == "sent"


def test_an_unchanged_sent_listing_is_looked_up_again_and_a_lookup_failure_fails_nothing(
    queue: Queue,
) -> None:
    hemnet = queue.transports["hemnet"]
    hemnet.publish_on_lookup = False
    ingest(queue.engine, offices=[office()], users=[user()], listings=[listing()])
    queue.transfer()
    hemnet.lookup_error = TransientError("lookup timed out", marketplace="hemnet")
    outcome = queue.transfer()
    assert not outcome.failures and queue.status("O1", "hemnet").state == "sent"
    hemnet.lookup_error = None
    hemnet.publish_on_lookup = True
    outcome = queue.transfer()
    assert outcome.unchanged == 2 and queue.status("O1", "hemnet").state == "published"
    assert len(hemnet.deliveries) == 1


def test_unchanged_document_sends_nothing_and_says_so(queue: Queue) -> None:
    ingest(queue.engine, offices=[office()], users=[user()], listings=[listing()])
    queue.transfer()
    before = queue.status("O1", "hemnet")
    outcome = queue.transfer()
    assert outcome.unchanged == 3 and outcome.counts == {"published": 2, "not_selected": 1}
    assert len(queue.transports["hemnet"].sent()) == 1
    after = queue.status("O1", "hemnet")
    assert (after.state, after.at, after.document_hash) == ("published", before.at,
                                                             before.document_hash)


def test_broker_email_change_resends_all_their_listings(queue: Queue) -> None:
    ingest(queue.engine, offices=[office()], users=[user(), user("U2", name="Per Berg")],
           listings=[listing("O1"), listing("O2"), listing("O3", broker_id="U2")])
    queue.transfer()
    ingest(queue.engine, users=[user(email="karin.lind@example.se")])
    outcome = queue.transfer()
    hemnet = queue.transports["hemnet"]
    updates = [d.listing_id for d in hemnet.deliveries if d.action == "update"]
    assert sorted(updates) == ["O1", "O2"]
    assert all(b"karin.lind@example.se" in d.document for d in hemnet.deliveries
               if d.action == "update")
    assert outcome.unchanged == 5  # O3 on hemnet and blocket, not_selected on hittahem x3
    assert len(hemnet.created()) == 3


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"marketplaces": ["blocket"]}, b"deselected"), ({"state": "withdrawn"}, b"withdrawn")],
)
def test_deselect_or_withdraw_deletes_where_published(
    queue: Queue, change: dict[str, object], reason: bytes
) -> None:
    ingest(queue.engine, offices=[office()], users=[user()], listings=[listing()])
    queue.transfer()
    ingest(queue.engine, listings=[listing(**change)])
    queue.transfer()
    hemnet = queue.status("O1", "hemnet")
    assert hemnet.state == "deleted" and hemnet.action == "delete" and hemnet.at is not None
    assert hemnet.marketplace_id == "HEMNET-1" and hemnet.document_hash is None
    deletes = [d for d in queue.transports["hemnet"].deliveries if d.action == "delete"]
    assert len(deletes) == 1 and reason in deletes[0].document
    assert queue.history("O1", "hemnet")[-1] == "deleted"


def test_a_listing_selected_again_after_a_delete_is_created_anew_not_replayed(
    queue: Queue,
) -> None:
    ingest(queue.engine, offices=[office()], users=[user()], listings=[listing()])
    queue.transfer()
    ingest(queue.engine, listings=[listing(marketplaces=["blocket"])])
    queue.transfer()
    ingest(queue.engine, listings=[listing(marketplaces=["hemnet", "blocket"])])
    queue.transfer()
    hemnet = queue.transports["hemnet"]
    first, again = hemnet.created("O1")
    assert first.document == again.document
    assert first.idempotency_key != again.idempotency_key
    assert queue.status("O1", "hemnet").state == "published"


def test_unmet_preconditions_fail_with_every_condition_and_send_nothing(queue: Queue) -> None:
    ingest(queue.engine, offices=[office()], users=[user()],
           listings=[listing(images=[], price=None, address=None)])
    outcome = queue.transfer()
    assert outcome.failed == 2
    error = queue.status("O1", "hemnet").error
    assert "images" in error and "price" in error and "street" in error
    assert queue.transports["hemnet"].deliveries == []
    failure = next(f for f in outcome.failures if f.marketplace == "hemnet")
    assert failure.listing_id == "O1" and failure.error.startswith("Hemnet: ")


def test_permanent_rejection_fails_at_once_without_retry(queue: Queue) -> None:
    queue.transports["blocket"].reject["O1"] = "422 the address is not in Sweden"
    ingest(queue.engine, offices=[office()], users=[user()], listings=[listing()])
    outcome = queue.transfer()
    blocket = queue.status("O1", "blocket")
    assert blocket.state == "failed" and "not in Sweden" in blocket.error
    assert len(queue.transports["blocket"].deliveries) == 1
    assert queue.metric("retried") == 0
    assert [f.marketplace for f in outcome.failures] == ["blocket"]


def test_transient_errors_are_retried_then_delivered(queue: Queue) -> None:
    queue.transports["hemnet"].transient_failures = 2
    ingest(queue.engine, offices=[office()], users=[user()], listings=[listing()])
    queue.transfer()
    hemnet = queue.status("O1", "hemnet")
    assert hemnet.state == "published" and hemnet.attempts == 3
    assert len(queue.transports["hemnet"].deliveries) == 3
    assert queue.metric("retried") == 2


def test_transient_errors_beyond_the_budget_end_failed(queue: Queue) -> None:
    queue.transports["hemnet"].transient_failures = 100
    ingest(queue.engine, offices=[office()], users=[user()], listings=[listing()])
    outcome = queue.transfer()
    hemnet = queue.status("O1", "hemnet")
    assert hemnet.state == "failed" and "503" in hemnet.error and "gave up after 3" in hemnet.error
    assert len(queue.transports["hemnet"].deliveries) == 3  # max_retries=2
    assert outcome.failed == 1 and queue.states("O1")["blocket"] == "published"


def test_a_message_delivered_twice_creates_one_listing(queue: Queue) -> None:
    ingest(queue.engine, offices=[office()], users=[user()], listings=[listing()])
    summary = request_transfer(queue.runtime, Scope("object", "O1"), queue.scheduler)
    from syndication.jobs.transfer import transfer_listing

    transfer_listing.send(listing_id="O1", marketplace="hemnet", request_id=summary.request_id)
    queue.join()
    hemnet = queue.transports["hemnet"]
    assert hemnet.creations == 1 and len({d.idempotency_key for d in hemnet.deliveries}) == 1
    assert queue.status("O1", "hemnet").state == "published"
    assert queue.status("O1", "hemnet").attempts == 2


class _NoFollowUps:
    """A scheduler that queues nothing: the test runs each job by hand."""

    def transfer(self, session: object, jobs: list[JobRef]) -> None:
        pass

    def confirm(self, session: object, job: JobRef, document_hash: str, poll: int,
                delay_ms: int) -> None:
        pass

    def confirm_later(self, job: JobRef, document_hash: str, poll: int,
                      delay_ms: int) -> None:
        return None


@pytest.mark.parametrize("engine_queue", ["queue", "pg_queue"])
def test_a_duplicate_that_delivers_while_a_job_reads_its_status_creates_nothing_more(
    engine_queue: str, request: pytest.FixtureRequest
) -> None:
    """The duplicate commits its delivery right after this job's first status read.

    Whatever this job reads next must come from the same moment: seeing no
    delivery yet together with the duplicate's new generation would send a
    create under a fresh key, and the marketplace would create the listing twice.
    """
    queue: Queue = request.getfixturevalue(engine_queue)
    ingest(queue.engine, offices=[office()], users=[user()], listings=[listing()])
    job = JobRef("O1", "hemnet", "r1")
    state = {"armed": True}

    def duplicate_commits(conn: object, cursor: object, statement: str, *_: object) -> None:
        reads_status = "transfer_status" in statement or "transfer_event" in statement
        if state["armed"] and statement.lstrip().upper().startswith("SELECT") and reads_status:
            state["armed"] = False
            run_transfer_job(queue.runtime, job, _NoFollowUps())

    event.listen(queue.engine, "after_cursor_execute", duplicate_commits)
    try:
        run_transfer_job(queue.runtime, job, _NoFollowUps())
    finally:
        event.remove(queue.engine, "after_cursor_execute", duplicate_commits)
    hemnet = queue.transports["hemnet"]
    assert not state["armed"] and len(hemnet.deliveries) == 2
    assert hemnet.creations == 1
    assert len({d.idempotency_key for d in hemnet.deliveries}) == 1
    assert queue.status("O1", "hemnet").state == "sent"


def test_idempotency_key_replays_the_first_answer(queue: Queue) -> None:
    """A worker that died after sending but before storing sends the same key again."""
    ingest(queue.engine, offices=[office()], users=[user()], listings=[listing()])
    queue.transfer()
    first = queue.status("O1", "hemnet")
    hemnet = queue.transports["hemnet"]
    hemnet.holds.clear()  # the marketplace would create anew without the key
    from sqlmodel import col, delete

    from syndication.store.db import session_scope
    from syndication.store.models import TransferEventRow, TransferStatusRow

    with session_scope(queue.engine) as session:  # the store as if the receipt was never stored
        for table in (TransferEventRow, TransferStatusRow):
            session.execute(delete(table).where(col(table.marketplace) == "hemnet"))
    queue.transfer("object", "O1")
    assert queue.status("O1", "hemnet").marketplace_id == first.marketplace_id
    assert len({d.idempotency_key for d in hemnet.created()}) == 1


def exited_worker() -> WorkerIdentity:
    """A worker process of this host that has exited."""
    process = subprocess.Popen(["true"])
    process.wait()
    return WorkerIdentity(this_worker().host, process.pid, "1")


@contextmanager
def pretending_to_be(worker: WorkerIdentity) -> Iterator[None]:
    """Starts in the block are recorded as by ``worker``."""
    TRANSFER_LIFECYCLE.identity = lambda: worker
    try:
        yield
    finally:
        TRANSFER_LIFECYCLE.identity = this_worker


def test_a_listing_that_keeps_killing_workers_ends_failed(queue: Queue) -> None:
    ingest(queue.engine, offices=[office()], users=[user()], listings=[listing()])
    from syndication.jobs.transfer import transfer_listing

    request_id = "r-deaths"
    message = transfer_listing.message(listing_id="O1", marketplace="hemnet", request_id=request_id)
    from syndication.store.db import session_scope
    from syndication.store.repository import record_status

    with session_scope(queue.engine) as session:
        record_status(session, "O1", "hemnet", "queued", request_id=request_id)
    for _ in range(3):  # three starts whose worker never came back
        with pretending_to_be(exited_worker()):
            start_of_job(queue.broker, message)
    assert_not_run(start_of_job(queue.broker, message))
    hemnet = queue.status("O1", "hemnet")
    assert hemnet.state == "failed" and "worker died 3 times" in hemnet.error
    assert hemnet.attempts == 4 and queue.transports["hemnet"].deliveries == []


def test_a_redelivered_message_after_one_death_still_runs(queue: Queue) -> None:
    ingest(queue.engine, offices=[office()], users=[user()], listings=[listing()])
    summary = request_transfer(queue.runtime, Scope("object", "O1"), queue.scheduler)
    queue.join()
    from syndication.jobs.transfer import transfer_listing

    message = transfer_listing.message(listing_id="O1", marketplace="hemnet",
                                       request_id=summary.request_id)
    queue.broker.enqueue(message)
    queue.join()
    assert queue.status("O1", "hemnet").attempts == 2
    assert queue.status("O1", "hemnet").state == "published"


def test_stub_queue_runs_on_postgres(pg_queue: Queue) -> None:
    ingest(pg_queue.engine, offices=[office()], users=[user()],
           listings=[listing(f"O{i}") for i in range(6)])
    outcome = pg_queue.transfer()
    assert outcome.finished and outcome.counts == {"published": 12, "not_selected": 6}
    assert isinstance(pg_queue.broker, dramatiq.Broker)


def test_a_listing_changed_between_fan_out_and_job_leaves_no_row_queued(queue: Queue) -> None:
    ingest(queue.engine, offices=[office()], users=[user()], listings=[listing()])
    held: list[object] = []

    class Holding:
        def transfer(self, session: object, jobs: list[object]) -> None:
            held.extend(jobs)

        def confirm(self, *args: object) -> None:
            raise AssertionError("nothing is sent")

    summary = request_transfer(queue.runtime, Scope("all"), Holding())  # type: ignore[arg-type]
    assert queue.states("O1")["hemnet"] == "queued"
    ingest(queue.engine, listings=[listing(state="withdrawn")])
    from syndication.transfer import request_outcome, run_transfer_job

    for job in held:
        run_transfer_job(queue.runtime, job, Holding())  # type: ignore[arg-type]
    outcome = request_outcome(queue.engine, summary.request_id)
    assert outcome.finished and outcome.counts == {"not_selected": 3}
    assert queue.transports["hemnet"].deliveries == []
