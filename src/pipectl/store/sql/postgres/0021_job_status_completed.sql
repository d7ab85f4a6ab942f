-- A job's status is one of active, paused, running, failed, archived: `completed` is a run's
-- outcome, never a job's (a one-time job that succeeds is archived), so the check no longer
-- admits it. pipectl never wrote it, but a job row that holds it becomes `archived`, as a
-- succeeded one-time job is, dated now so that retention keeps it its full window.
UPDATE scheduled_jobs SET status = 'archived', updated_at = now() WHERE status = 'completed';

ALTER TABLE scheduled_jobs
    DROP CONSTRAINT scheduled_jobs_status_check,
    ADD CONSTRAINT scheduled_jobs_status_check
        CHECK (status IN ('active', 'paused', 'running', 'failed', 'archived'));
