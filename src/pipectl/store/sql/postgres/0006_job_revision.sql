-- pipectl schema v6: an operator's edit made while a run is in progress stands.
--
-- Every operator edit (pipectl_update_job) bumps the job's revision. A run's outcome carries the
-- revision of the job its next state was computed from. The finishing write records the run,
-- its datasets and that next state as before, and answers 'edited' when the job's revision has
-- moved on since; then it leaves the job's retry count alone, and the caller computes the next
-- state again from the job as it is now and writes it with pipectl_reapply_job_update, guarded
-- by the new revision. So a job is never left `running` without a run, whatever happens to the
-- caller in between, and the recomputation counts this run's failure exactly once.
ALTER TABLE scheduled_jobs ADD COLUMN revision integer NOT NULL DEFAULT 0;

-- As in 0001, and the revision goes up by one.
CREATE OR REPLACE FUNCTION pipectl_update_job(
    p_job_id bigint,
    p_changes jsonb,
    p_now timestamptz,
    p_only_if_status text[] DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    editable CONSTANT text[] := ARRAY['name', 'cron_expression', 'timezone', 'next_run_at',
        'status', 'parameters', 'max_retries', 'retry_count', 'timeout_seconds',
        'concurrency_key', 'last_error'];
    unknown text;
    job jsonb;
BEGIN
    SELECT string_agg(key, ', ' ORDER BY key) INTO unknown
    FROM jsonb_object_keys(p_changes) AS key
    WHERE key <> ALL (editable);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'not editable: %', unknown USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- jsonb_populate_record(j, …) is the row with the given keys replaced, typed per column.
    UPDATE scheduled_jobs AS j
    SET (name, cron_expression, timezone, next_run_at, status, parameters, max_retries,
         retry_count, timeout_seconds, concurrency_key, last_error, updated_at, revision)
      = (SELECT c.name, c.cron_expression, c.timezone, c.next_run_at, c.status, c.parameters,
                c.max_retries, c.retry_count, c.timeout_seconds, c.concurrency_key, c.last_error,
                p_now, j.revision + 1
         FROM jsonb_populate_record(j, p_changes) AS c)
    WHERE j.id = p_job_id
      AND (coalesce(cardinality(p_only_if_status), 0) = 0 OR j.status = ANY (p_only_if_status))
    RETURNING to_jsonb(j.*) INTO job;
    RETURN job;
END
$$;

-- The outcomes as rows, as in 0004, with the revision each job update was computed from.
DROP FUNCTION pipectl_finish_runs(jsonb);
DROP FUNCTION pipectl_outcomes(jsonb);
CREATE FUNCTION pipectl_outcomes(p_runs jsonb)
RETURNS TABLE (run_id bigint, lease_token text, status text, finished_at timestamptz,
    error_message text, logs text, steps jsonb, job_status text, next_run_at timestamptz,
    retry_count integer, last_error text, job_revision integer, datasets jsonb,
    "position" bigint)
LANGUAGE sql IMMUTABLE AS $$
    SELECT * FROM ROWS FROM (jsonb_to_recordset(p_runs) AS (run_id bigint, lease_token text,
            status text, finished_at timestamptz, error_message text, logs text, steps jsonb,
            job_status text, next_run_at timestamptz, retry_count integer, last_error text,
            job_revision integer, datasets jsonb))
        WITH ORDINALITY
$$;

-- Records several outcomes in one transaction, as in 0004.
--
-- p_runs: [{"run_id", "lease_token", "status", "finished_at", "error_message", "logs", "steps",
--           "job_status", "next_run_at", "retry_count", "last_error", "job_revision",
--           "datasets"}, …]
-- Returns one word per outcome, in the order given: 'recorded' (the run, its job's next state
-- and its datasets), 'edited' (the same, except the retry count, for the job's revision is no
-- longer job_revision: its next state is to be computed again) or 'lost' (the lease was lost:
-- nothing of it written).
CREATE FUNCTION pipectl_finish_runs(p_runs jsonb) RETURNS SETOF text
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
        WHERE r.id = o.run_id AND r.status = 'running' AND r.lease_token = o.lease_token
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

    -- In key order across the batch, as in 0004.
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

-- A stuck run, failed as in 0003 (the stuck condition re-checked in the same UPDATE). Returns
-- 'recorded', 'edited' (as in pipectl_finish_runs) or 'lost' (the run finished or heartbeated
-- since it was found: nothing written).
DROP FUNCTION pipectl_fail_stale_run(bigint, timestamptz, timestamptz, text, timestamptz, text,
    text, jsonb, text, timestamptz, integer, text, jsonb);
CREATE FUNCTION pipectl_fail_stale_run(
    p_run_id bigint,
    p_heartbeat_before timestamptz,
    p_started_before timestamptz,
    p_status text,
    p_finished_at timestamptz,
    p_error_message text,
    p_logs text,
    p_steps jsonb,
    p_job_status text,
    p_next_run_at timestamptz,
    p_retry_count integer,
    p_last_error text,
    p_job_revision integer,
    p_datasets jsonb
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    closed_job_id bigint;
    edited boolean;
    outcome record;
BEGIN
    UPDATE scheduled_job_runs AS r
    SET status = p_status, finished_at = p_finished_at, error_message = p_error_message,
        logs = p_logs, steps = p_steps
    WHERE r.id = p_run_id AND pipectl_is_stuck(r, p_heartbeat_before, p_started_before)
    RETURNING r.job_id INTO closed_job_id;
    IF NOT FOUND THEN
        RETURN 'lost';
    END IF;
    UPDATE scheduled_jobs AS j
    SET status = CASE WHEN j.status = 'running' THEN p_job_status ELSE j.status END,
        next_run_at = p_next_run_at,
        retry_count = CASE WHEN j.revision = p_job_revision
            THEN p_retry_count ELSE j.retry_count END,
        last_error = p_last_error, updated_at = p_finished_at
    WHERE j.id = closed_job_id
    RETURNING j.revision <> p_job_revision INTO edited;
    FOR outcome IN
        SELECT d.* FROM ROWS FROM (jsonb_to_recordset(p_datasets)
                AS (brand_id text, dataset text, succeeded boolean, error text))
            WITH ORDINALITY AS d (brand_id, dataset, succeeded, error, "position")
        ORDER BY coalesce(d.brand_id, ''), d.dataset, d.position
    LOOP
        PERFORM pipectl_record_dataset(p_run_id, p_finished_at, outcome.brand_id,
            outcome.dataset, outcome.succeeded, outcome.error);
    END LOOP;
    RETURN CASE WHEN edited THEN 'edited' ELSE 'recorded' END;
END
$$;

-- Replaces the next state that run p_run_id wrote for its job (status p_written_status) with one
-- computed from the job at revision p_revision: only while the job still has that revision and
-- no later run, and the status only while it is still the one the run wrote (so a job paused
-- or archived by hand stays so). False when the job was edited again, claimed again or is gone.
CREATE FUNCTION pipectl_reapply_job_update(
    p_job_id bigint,
    p_run_id bigint,
    p_revision integer,
    p_written_status text,
    p_job_status text,
    p_next_run_at timestamptz,
    p_retry_count integer,
    p_last_error text,
    p_at timestamptz
) RETURNS boolean
LANGUAGE sql AS $$
    WITH updated AS (
        UPDATE scheduled_jobs AS j
        SET status = CASE WHEN j.status = p_written_status THEN p_job_status ELSE j.status END,
            next_run_at = p_next_run_at, retry_count = p_retry_count, last_error = p_last_error,
            updated_at = p_at
        WHERE j.id = p_job_id AND j.revision = p_revision AND j.last_run_id = p_run_id
        RETURNING 1
    )
    SELECT EXISTS (SELECT FROM updated)
$$;

SELECT pipectl_restrict_functions();
