-- A worker that stops cleanly says so: `status`, `doctor` and the metrics count it out at once
-- instead of for worker_stale_after after its last heartbeat.
ALTER TABLE workers ADD COLUMN stopped_at TEXT;
