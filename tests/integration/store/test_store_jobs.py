"""Scans queued through the API, in the store, on SQLite and PostgreSQL: claimed under a
lease by one node only, taken again when that node dies, cancelled, and put back in the
queue when their node restarts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from agent.model.jobs import JobOptions, JobProgress, JobStatus
from agent.store import Store
from tests.integration.store.conftest import StoreOpener

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OPTIONS = JobOptions(gateways=("https://gw.example",), lists=("tcap",), mode="raw")


async def test_a_submitted_job_is_queued_with_its_options(store: Store) -> None:
    """submit() stores a queued job with what was asked; get() reads it back; unknown ids are None."""
    job = await store.jobs.submit("ipfs://bafyjob", OPTIONS, "alice")
    assert (job.status, job.target, job.options, job.requested_by) == (
        JobStatus.QUEUED,
        "ipfs://bafyjob",
        OPTIONS,
        "alice",
    )
    assert (job.attempts, job.progress, job.report, job.node, job.cancel_requested) == (
        0,
        JobProgress(),
        None,
        None,
        False,
    )
    assert await store.jobs.get(job.id) == job
    assert await store.jobs.get(job.id + 1) is None


async def test_claim_takes_the_oldest_queued_jobs_up_to_the_limit(store: Store) -> None:
    """A claim marks jobs running for the node, with a lease, a start time and one attempt."""
    jobs = [await store.jobs.submit(f"ipfs://bafy{i}", JobOptions(), None) for i in range(3)]
    claimed = await store.jobs.claim("n1", limit=2, lease_s=60, now=T0)
    assert [j.id for j in claimed] == [jobs[0].id, jobs[1].id]
    for j in claimed:
        assert (j.status, j.node, j.lease_until, j.started_at, j.attempts) == (
            JobStatus.RUNNING,
            "n1",
            T0 + timedelta(seconds=60),
            T0,
            1,
        )
    # Held jobs are not claimed again while their lease runs.
    again = await store.jobs.claim("n2", limit=5, lease_s=60, now=T0 + timedelta(seconds=30))
    assert [j.id for j in again] == [jobs[2].id]
    assert await store.jobs.claim("n2", limit=5, lease_s=60, now=T0 + timedelta(seconds=30)) == []


async def test_a_dead_nodes_job_is_claimed_again_once_its_lease_expired(store: Store) -> None:
    """After the lease ends another node takes the job; the first start time is kept and
    attempts count up; the dead node can then neither renew nor finish it."""
    job = await store.jobs.submit("ipfs://bafydead", JobOptions(), None)
    await store.jobs.claim("dead", limit=1, lease_s=10, now=T0)
    (taken,) = await store.jobs.claim("alive", limit=1, lease_s=10, now=T0 + timedelta(seconds=11))
    assert (taken.id, taken.node, taken.attempts, taken.started_at) == (job.id, "alive", 2, T0)
    assert await store.jobs.renew(job.id, "dead", lease_s=10) is None
    assert await store.jobs.finish(job.id, "dead", JobStatus.DONE, report={"x": 1}) is False
    assert await store.jobs.finish(job.id, "alive", JobStatus.DONE, report={"items": []}) is True
    done = await store.jobs.get(job.id)
    assert done is not None and (done.status, done.report, done.lease_until) == (JobStatus.DONE, {"items": []}, None)
    assert done.finished_at is not None


async def test_renew_extends_the_lease_writes_progress_and_reports_a_cancel(store: Store) -> None:
    """renew() moves lease_until and keeps progress for the holder; after cancel() the
    row it returns says cancel_requested, and the runner finishes the job as cancelled."""
    job = await store.jobs.submit("ipfs://bafyrenew", JobOptions(), "bob")
    await store.jobs.claim("n1", limit=1, lease_s=10, now=T0)
    progress = JobProgress(items=5, verified=4, errors=1, findings=2)
    renewed = await store.jobs.renew(job.id, "n1", lease_s=10, progress=progress, now=T0 + timedelta(seconds=8))
    assert renewed is not None
    assert (renewed.lease_until, renewed.progress, renewed.cancel_requested) == (
        T0 + timedelta(seconds=18),
        progress,
        False,
    )
    asked = await store.jobs.cancel(job.id)
    assert asked is not None and (asked.status, asked.cancel_requested) == (JobStatus.RUNNING, True)
    seen = await store.jobs.renew(job.id, "n1", lease_s=10, now=T0 + timedelta(seconds=9))
    assert seen is not None and seen.cancel_requested and seen.progress == progress
    assert await store.jobs.finish(job.id, "n1", JobStatus.CANCELLED, progress=JobProgress(items=6))
    ended = await store.jobs.get(job.id)
    assert ended is not None and (ended.status, ended.progress.items) == (JobStatus.CANCELLED, 6)


async def test_finish_refuses_a_state_that_is_not_an_ending(store: Store) -> None:
    """Only done, failed and cancelled end a job; failed keeps its error."""
    job = await store.jobs.submit("ipfs://bafyend", JobOptions(), None)
    await store.jobs.claim("n1", limit=1, lease_s=10)
    for status in (JobStatus.QUEUED, JobStatus.RUNNING):
        with pytest.raises(ValueError, match="done, failed or cancelled"):
            await store.jobs.finish(job.id, "n1", status)
    assert await store.jobs.finish(job.id, "n1", JobStatus.FAILED, error="no gateway answered")
    failed = await store.jobs.get(job.id)
    assert failed is not None and (failed.status, failed.error, failed.report) == (
        JobStatus.FAILED,
        "no gateway answered",
        None,
    )


async def test_cancel_of_queued_running_finished_and_unknown_jobs(store: Store) -> None:
    """A queued job is cancelled at once and never claimed; a running one is asked to stop;
    a finished one stays as it was; an unknown id answers None."""
    queued = await store.jobs.submit("ipfs://bafyq", JobOptions(), None)
    cancelled = await store.jobs.cancel(queued.id)
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED and cancelled.finished_at is not None
    assert await store.jobs.claim("n1", limit=5, lease_s=10) == []

    finished = await store.jobs.submit("ipfs://bafyf", JobOptions(), None)
    await store.jobs.claim("n1", limit=1, lease_s=10)
    await store.jobs.finish(finished.id, "n1", JobStatus.DONE, report={})
    kept = await store.jobs.cancel(finished.id)
    assert kept is not None and (kept.status, kept.cancel_requested) == (JobStatus.DONE, False)
    assert await store.jobs.cancel(finished.id + 100) is None


async def test_an_expired_job_that_was_asked_to_stop_is_cancelled_not_claimed(store: Store) -> None:
    """Its node died after the cancel: the next claim cancels it instead of running it again."""
    job = await store.jobs.submit("ipfs://bafystop", JobOptions(), None)
    await store.jobs.claim("dead", limit=1, lease_s=10, now=T0)
    await store.jobs.cancel(job.id)
    assert await store.jobs.claim("alive", limit=1, lease_s=10, now=T0 + timedelta(seconds=11)) == []
    gone = await store.jobs.get(job.id)
    assert gone is not None and gone.status is JobStatus.CANCELLED and gone.lease_until is None


async def test_requeue_own_puts_a_restarted_nodes_jobs_back_in_the_queue(store: Store) -> None:
    """At start a node's running jobs are queued again (another node's are left alone);
    one asked to stop meanwhile is cancelled; the count says how many were queued."""
    mine, stopped, theirs = [await store.jobs.submit(f"ipfs://bafy{i}", JobOptions(), None) for i in range(3)]
    await store.jobs.claim("me", limit=2, lease_s=600)
    await store.jobs.claim("other", limit=1, lease_s=600)
    await store.jobs.cancel(stopped.id)
    assert await store.jobs.requeue_own("me") == 1
    states = {j.id: (j.status, j.node, j.lease_until is None) for j in await store.jobs.page(limit=10)}
    assert states[mine.id] == (JobStatus.QUEUED, None, True)
    assert states[stopped.id][0] is JobStatus.CANCELLED
    assert states[theirs.id][:2] == (JobStatus.RUNNING, "other")
    (again,) = await store.jobs.claim("me", limit=5, lease_s=600)
    assert (again.id, again.attempts) == (mine.id, 2)


async def test_page_is_newest_first_with_a_stable_cursor_and_a_requester_filter(store: Store) -> None:
    """Paging by before_id continues where the last page ended even when jobs are submitted
    meanwhile; requested_by keeps one caller's jobs."""
    ids = [(await store.jobs.submit(f"ipfs://bafy{i}", JobOptions(), "a" if i % 2 else "b")).id for i in range(5)]
    first = await store.jobs.page(limit=2)
    assert [j.id for j in first] == [ids[4], ids[3]]
    await store.jobs.submit("ipfs://bafynew", JobOptions(), "a")
    rest = await store.jobs.page(limit=10, before_id=first[-1].id)
    assert [j.id for j in rest] == [ids[2], ids[1], ids[0]]
    assert [j.id for j in await store.jobs.page(limit=10, requested_by="b")] == [ids[4], ids[2], ids[0]]


async def test_two_nodes_claiming_at_once_never_get_the_same_job(open_store: StoreOpener) -> None:
    """Two stores (two nodes, their own connections) claim concurrently, round after round:
    every job goes to exactly one of them."""
    one, two = await open_store(), await open_store()
    all_two: set[int] = set()
    for round_ in range(5):
        submitted = {(await one.jobs.submit(f"ipfs://bafy{round_}-{i}", JobOptions(), None)).id for i in range(8)}
        got_one, got_two = await asyncio.gather(
            one.jobs.claim("one", limit=8, lease_s=600), two.jobs.claim("two", limit=8, lease_s=600)
        )
        ids_one, ids_two = {j.id for j in got_one}, {j.id for j in got_two}
        assert not ids_one & ids_two
        leftover = {j.id for j in await one.jobs.claim("one", limit=8, lease_s=600)}
        assert ids_one | ids_two | leftover == submitted
        all_two |= ids_two
    for j in await one.jobs.page(limit=100):
        assert j.node == ("two" if j.id in all_two else "one")
