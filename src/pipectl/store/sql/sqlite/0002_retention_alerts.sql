-- pipectl schema v2 for SQLite: history retention and alert bookkeeping.

-- The freshness state an alert was last sent for; workers claim a transition by changing it
-- (compare-and-set), so each transition is announced once.
ALTER TABLE dataset_status ADD COLUMN alerted_state TEXT;

-- `runs prune` walks old finished runs oldest first; `jobs purge` old archived jobs.
CREATE INDEX scheduled_job_runs_finished ON scheduled_job_runs (finished_at)
    WHERE status <> 'running';
CREATE INDEX scheduled_jobs_archived ON scheduled_jobs (updated_at) WHERE status = 'archived';
