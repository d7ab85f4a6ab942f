"""The worker's logger and the ids its log lines carry (pipectl.logs prints them as key=value)."""

from __future__ import annotations

import logging
from typing import Any

from pipectl.models import Claim

log = logging.getLogger("pipectl.worker")


def ids(worker_id: str, action: str | None = None, **more: Any) -> dict[str, Any]:
    return {"action": action, "worker_id": worker_id, **more}


def run_ids(worker_id: str, claim: Claim) -> dict[str, Any]:
    job, run = claim.job, claim.run
    return ids(
        worker_id, "run", job_id=job.id, run_id=run.id, job_type=job.job_type, attempt=run.attempt
    )
