"""The completer: commits run outcomes in batches, reports each once committed, and gives back
the claims of a batch that were never started."""

from __future__ import annotations

from dataclasses import dataclass

from pipectl.clock import Clock
from pipectl.errors import StoreUnavailable
from pipectl.lifecycle import settle_edited_job
from pipectl.models import Claim, LeaseToken, Recorded, RunResult
from pipectl.store import Store
from pipectl.worker.events import WorkerEvents, WorkerStats
from pipectl.worker.leases import HeldRuns
from pipectl.worker.logs import ids, log, run_ids
from pipectl.worker.reconnect import reconnect_delays

# A quick run's outcome waits to be committed with the rest of its claim batch, but never
# longer than this after its run ended.
RECORD_WITHIN_S = 0.1


@dataclass
class Ran:
    """A run that has finished in its handler but whose outcome is not committed yet."""

    claim: Claim
    result: RunResult
    error: str | None
    duration_s: float
    ended: float  # Clock.monotonic()


class Completer:
    """Outcomes wait here until `record` commits them in one transaction; `unstarted` holds the
    current batch's claims not yet run, which `give_back` releases. Patient calls wait out a
    store outage; the others keep what they could not write for the next try, so the worker
    can call them between the ticks of a run it supervises."""

    def __init__(
        self,
        worker_id: str,
        held: HeldRuns,
        stats: WorkerStats,
        events: WorkerEvents,
        clock: Clock,
    ) -> None:
        self.worker_id = worker_id
        self.held = held
        self.stats = stats
        self.events = events
        self.clock = clock
        self.unstarted: list[Claim] = []
        self._unrecorded: list[Ran] = []
        self._unsettled: list[Ran] = []  # recorded, but their jobs were edited during the run

    def add(self, ran: Ran) -> None:
        self._unrecorded.append(ran)

    def overdue(self) -> bool:
        """An outcome has waited RECORD_WITHIN_S for its batch-mates: commit now."""
        return bool(self._unrecorded) and (
            self.clock.monotonic() - self._unrecorded[0].ended > RECORD_WITHIN_S
        )

    def flush(self, store: Store) -> None:
        """Without waiting on the store: give back the unstarted claims and commit the outcomes
        that wait (what nothing should hold up while a slow run goes on)."""
        self.give_back(store, patient=False)
        self.record(store, patient=False)

    def record(self, store: Store, *, patient: bool = True) -> None:
        """Commit the unrecorded outcomes in one transaction, then report each."""
        self._settle(store, patient=patient)  # left over from a try the store cut short
        if not self._unrecorded:
            return
        ran = self._unrecorded
        outcomes = [(r.claim.run.id, r.claim.run.lease_token, r.result) for r in ran]
        if patient:
            recorded = self._finish(store, outcomes)
        else:
            try:
                recorded = store.finish_runs(outcomes)
            except StoreUnavailable:
                return
        self._unrecorded = []
        for item, ok in zip(ran, recorded, strict=True):
            extra = run_ids(self.worker_id, item.claim)
            if ok is Recorded.EDITED:
                self._unsettled.append(item)
            if ok:
                if item.result.status == "completed":
                    self.stats.completed += 1
                else:
                    self.stats.failed += 1
                self.events.on_run_finished(item.claim, item.result, item.duration_s)
                error = item.error
                log.info(f"run {item.result.status}" + (f": {error}" if error else ""), extra=extra)
            else:
                self.stats.lost += 1
                log.warning("run outcome discarded: the run was recovered elsewhere", extra=extra)
        self.held.release(item.claim.run.id for item in ran)
        self._settle(store, patient=patient)

    def give_back(self, store: Store, *, patient: bool = True) -> None:
        """Release the batch's unstarted claims (their jobs are due again at once, for any
        worker), with the input successes they took when they started (dataflow.given_back).
        Not patient: if the store is down, keep the rest for the next try."""
        while self.unstarted:
            claim = self.unstarted[0]
            try:
                triggers = []
                if claim.run.triggered_by:
                    from pipectl.dataflow import given_back  # with the first claim, as in loop

                    triggers = given_back(store, claim)
                released = store.release_run(
                    claim.run.id, claim.run.lease_token, self.clock.now(), triggers
                )
            except StoreUnavailable:
                if patient:
                    raise
                return
            self.unstarted.pop(0)
            if released:
                self.stats.released += 1
            self.held.release([claim.run.id])

    def _settle(self, store: Store, *, patient: bool) -> None:
        """The runs are recorded but their jobs were edited during them: their next states follow
        the edits (lifecycle.settle_edited_job). Patient: wait out a store outage, as _finish
        does; otherwise keep the rest for the next try (a job not settled keeps the next state
        its run wrote)."""
        delays = reconnect_delays()
        while self._unsettled:
            item = self._unsettled[0]
            try:
                settle_edited_job(store, item.claim.job.id, item.claim.run.id, item.result)
            except StoreUnavailable as exc:
                if not patient:
                    return
                delay = next(delays)
                log.error(
                    f"cannot update the job edited during its run yet ({exc}); "
                    f"retrying in {delay:g}s",
                    extra=run_ids(self.worker_id, item.claim),
                )
                self.clock.sleep(delay)
                continue
            self._unsettled.pop(0)
            log.info(
                "job edited during the run: its next state follows the edit",
                extra=run_ids(self.worker_id, item.claim),
            )

    def _finish(
        self, store: Store, outcomes: list[tuple[int, LeaseToken, RunResult]]
    ) -> list[Recorded]:
        """Record the outcomes; if the store is down, keep them and retry until they are recorded
        or the sweep elsewhere has recovered the runs (then the lease guard refuses them). The
        same store handle is retried (every backend reopens its connection on the next call),
        so the poll loop never goes on with a handle closed here."""
        delays = reconnect_delays()
        while True:
            try:
                return store.finish_runs(outcomes)
            except StoreUnavailable as exc:
                delay = next(delays)
                run_id = ",".join(str(run_id) for run_id, _, _ in outcomes)
                log.error(
                    f"cannot record run outcome yet ({exc}); retrying in {delay:g}s",
                    extra=ids(self.worker_id, "finish_retry", run_id=run_id),
                )
                self.clock.sleep(delay)
