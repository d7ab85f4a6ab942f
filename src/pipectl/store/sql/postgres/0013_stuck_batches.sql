-- pipectl schema v13: the recovery sweep fails its stuck runs in one statement, through the
-- write that records every outcome; functions that nothing calls are dropped.

-- Nothing calls these: outcomes go through pipectl_finish_runs, and stuck runs now through
-- pipectl_fail_stuck_runs below.
DROP FUNCTION pipectl_finish_run(bigint, text, text, timestamptz, text, text, jsonb, text,
    timestamptz, integer, text, jsonb);
DROP FUNCTION pipectl_fail_stale_run(bigint, timestamptz, timestamptz, text, timestamptz, text,
    text, jsonb, text, timestamptz, integer, text, integer, jsonb);
DROP FUNCTION pipectl_apply_run_result(bigint, bigint, timestamptz, text, timestamptz, integer,
    text, jsonb);

-- "Stuck" is the one word for a run whose worker stopped heartbeating.
DROP FUNCTION pipectl_stale_runs(timestamptz, timestamptz);

-- The stuck runs (pipectl_is_stuck) with their jobs, in run id order. The range on heartbeat_at
-- lets the sweep read only the old entries of the running-run index.
CREATE FUNCTION pipectl_stuck_runs(p_heartbeat_before timestamptz, p_started_before timestamptz)
RETURNS SETOF jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('run', to_jsonb(r), 'job', to_jsonb(j))
    FROM scheduled_job_runs AS r
    JOIN scheduled_jobs AS j ON j.id = r.job_id
    WHERE r.status = 'running'
      AND r.heartbeat_at < greatest(p_heartbeat_before, p_started_before)
      AND pipectl_is_stuck(r, p_heartbeat_before, p_started_before)
    ORDER BY r.id
$$;

-- Records outcomes in one transaction: each run that is still running gets its outcome, its
-- job its next state and its datasets their attempt. A run is guarded by its lease when
-- p_heartbeat_before is NULL (a worker finishing its runs), otherwise by the stuck condition
-- (the sweep), re-checked in the same UPDATE so that a run that finished or heartbeated since
-- it was found is left alone.
--
-- p_runs: [{"run_id", "lease_token", "status", "finished_at", "error_message", "logs", "steps",
--           "job_status", "next_run_at", "retry_count", "last_error", "job_revision",
--           "datasets"}, …]
-- Returns one word per outcome, in the order given: 'recorded'; 'edited' (the same, except the
-- retry count, for the job's revision is no longer job_revision: its next state is to be
-- computed again); or 'lost' (the guard failed: nothing of it written).
--
-- Runs and jobs are updated set-wise; datasets one row at a time, in key order across the batch
-- so that two batches lock shared datasets in the same order, because two outcomes may touch
-- the same dataset, which one INSERT … ON CONFLICT cannot update twice.
CREATE FUNCTION pipectl_record_outcomes(
    p_runs jsonb,
    p_heartbeat_before timestamptz,
    p_started_before timestamptz
) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    closed_ids bigint[];
    edited_ids bigint[];
    outcome record;
BEGIN
    WITH closed AS (
        UPDATE scheduled_job_runs AS r
        SET status = o.status, finished_at = o.finished_at, error_message = o.error_message,
            logs = o.logs, steps = o.steps
        FROM pipectl_outcomes(p_runs) AS o
        WHERE r.id = o.run_id AND r.status = 'running'
          AND CASE WHEN p_heartbeat_before IS NULL THEN r.lease_token = o.lease_token
                   ELSE pipectl_is_stuck(r, p_heartbeat_before, p_started_before) END
        RETURNING r.id, r.job_id
    ), jobs AS (
        -- The status applies only while the job is still running: an operator who paused or
        -- archived it mid-run keeps their choice.
        UPDATE scheduled_jobs AS j
        SET status = CASE WHEN j.status = 'running' THEN o.job_status ELSE j.status END,
            next_run_at = o.next_run_at,
            retry_count = CASE WHEN j.revision = o.job_revision
                THEN o.retry_count ELSE j.retry_count END,
            last_error = o.last_error, updated_at = o.finished_at
        FROM closed JOIN pipectl_outcomes(p_runs) AS o ON o.run_id = closed.id
        WHERE j.id = closed.job_id
        RETURNING closed.id, j.revision <> o.job_revision AS edited
    )
    SELECT coalesce(array_agg(closed.id), '{}'),
        coalesce((SELECT array_agg(jobs.id) FROM jobs WHERE jobs.edited), '{}')
    INTO closed_ids, edited_ids FROM closed;

    FOR outcome IN
        SELECT o.run_id, o.finished_at, d.brand_id, d.dataset, d.succeeded, d.error
        FROM pipectl_outcomes(p_runs) AS o,
            ROWS FROM (jsonb_to_recordset(o.datasets)
                AS (brand_id text, dataset text, succeeded boolean, error text))
            WITH ORDINALITY AS d (brand_id, dataset, succeeded, error, "position")
        WHERE o.run_id = ANY (closed_ids)
        ORDER BY coalesce(d.brand_id, ''), d.dataset, o.position, d.position
    LOOP
        PERFORM pipectl_record_dataset(outcome.run_id, outcome.finished_at, outcome.brand_id,
            outcome.dataset, outcome.succeeded, outcome.error);
    END LOOP;

    RETURN QUERY SELECT CASE
            WHEN o.run_id = ANY (edited_ids) THEN 'edited'
            WHEN o.run_id = ANY (closed_ids) THEN 'recorded'
            ELSE 'lost' END
        FROM pipectl_outcomes(p_runs) AS o ORDER BY o.position;
END
$$;

-- A worker's outcomes, each guarded by its run's lease.
CREATE OR REPLACE FUNCTION pipectl_finish_runs(p_runs jsonb) RETURNS SETOF text
LANGUAGE sql AS $$
    SELECT * FROM pipectl_record_outcomes(p_runs, NULL, NULL)
$$;

-- The sweep's outcomes for stuck runs, each guarded by the stuck condition (the lease_token of
-- each outcome is ignored; without cut-offs no run is stuck).
CREATE FUNCTION pipectl_fail_stuck_runs(
    p_heartbeat_before timestamptz,
    p_started_before timestamptz,
    p_runs jsonb
) RETURNS SETOF text
LANGUAGE sql AS $$
    SELECT * FROM pipectl_record_outcomes(p_runs, coalesce(p_heartbeat_before, '-infinity'),
        coalesce(p_started_before, '-infinity'))
$$;

SELECT pipectl_restrict_functions();
