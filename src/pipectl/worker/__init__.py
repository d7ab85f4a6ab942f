"""The worker, an engine service: claims due jobs, runs them and records them.

- loop.py: the poll loop (`Worker`), and `Worker.from_settings`, which assembles a complete one
- runner.py: one handler run, under the job's timeout and the shutdown grace
- completer.py: commits run outcomes in batches, gives back claims not started
- heartbeat.py: renews the worker and its leases; stops lost and cancelled runs
- maintenance.py: the stuck-run sweep, retention, the worker registry
- events.py: the counters and the hooks watchers (metrics, alerts) implement
- wakeups.py: LISTEN wake-ups where the store declares them, polling otherwise
- leases.py, logs.py, reconnect.py: the held runs, log ids, reconnect delays
"""

from __future__ import annotations

from pipectl.worker.events import Broadcast, WorkerEvents, WorkerStats
from pipectl.worker.loop import Worker, next_claim_size
from pipectl.worker.runner import QUICK_RUN_S

__all__ = ["QUICK_RUN_S", "Broadcast", "Worker", "WorkerEvents", "WorkerStats", "next_claim_size"]
