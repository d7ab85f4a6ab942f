-- pipectl_status_snapshot writes its jobs, their last runs and the dataset rows as arrays of
-- column values, each array in the field order of the record it becomes (models.Job, Run,
-- DatasetStatus), instead of one JSON object per row: with 10,000 brands that is 120,000 rows,
-- and building, sending and parsing their keys was most of the snapshot's cost (the server's
-- part 0.8-1.1 s against about 0.5 s so). Thresholds, stuck runs, running runs and workers,
-- a handful of rows, stay objects. Which rows, and their order, are unchanged.
CREATE OR REPLACE FUNCTION pipectl_status_snapshot(
    p_all_brands boolean,
    p_brand_id text,
    p_statuses text[],
    p_heartbeat_before timestamptz,
    p_started_before timestamptz,
    p_running_limit integer
) RETURNS SETOF json
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH jobs AS (
        SELECT j AS job FROM scheduled_jobs AS j
        WHERE (p_all_brands OR j.brand_id = p_brand_id OR (p_brand_id IS NULL AND j.brand_id IS NULL))
          AND (coalesce(cardinality(p_statuses), 0) = 0 OR j.status = ANY (p_statuses))
    )
    SELECT json_build_object(
        'jobs', (
            SELECT coalesce(json_agg(json_build_array(
                       (c.job).id, (c.job).brand_id, (c.job).job_type, (c.job).name,
                       (c.job).schedule_type, (c.job).cron_expression, (c.job).timezone,
                       (c.job).next_run_at, (c.job).status, (c.job).parameters,
                       (c.job).max_retries, (c.job).retry_count, (c.job).retry_base_seconds,
                       (c.job).retry_cap_seconds, (c.job).last_error, (c.job).timeout_seconds,
                       (c.job).dedupe_key, (c.job).concurrency_key, (c.job).last_run_id,
                       (c.job).created_at, (c.job).updated_at, (c.job).revision, (c.job).inputs,
                       (c.job).max_hold_seconds, (c.job).held_since, (c.job).waiting_on,
                       (c.job).triggered_at)
                   ORDER BY (c.job).id), '[]')
            FROM jobs AS c),
        'last_runs', (
            SELECT coalesce(json_agg(x.run ORDER BY x.id), '[]')
            FROM jobs AS c
            -- OFFSET 0 keeps the lookup a subquery run per job, never a join over all runs.
            CROSS JOIN LATERAL (
                SELECT r.id, json_build_array(
                           r.id, r.job_id, r.attempt, r.status, r.started_at, r.finished_at,
                           r.heartbeat_at, r.worker_id, r.lease_token, r.error_message, r.logs,
                           r.steps, r.concurrency_key, r.cancel_requested_at,
                           r.cancel_requested_by, r.brand_id, r.triggered_by) AS run
                FROM scheduled_job_runs AS r
                WHERE r.id = (c.job).last_run_id OFFSET 0) AS x),
        'datasets', (
            SELECT coalesce(json_agg(json_build_array(
                       d.brand_id, d.dataset, d.last_success_at, d.last_attempt_at, d.last_status,
                       d.last_error, d.last_run_id, d.alerted_state, d.retired_at)
                   ORDER BY coalesce(d.brand_id, '') COLLATE "C", d.dataset COLLATE "C"), '[]')
            FROM dataset_status AS d
            WHERE p_all_brands OR coalesce(d.brand_id, '') = coalesce(p_brand_id, '')),
        'thresholds', (
            SELECT coalesce(json_agg(t ORDER BY t.dataset COLLATE "C",
                                                t.brand_id COLLATE "C" NULLS FIRST), '[]')
            FROM dataset_thresholds AS t),
        'stuck_runs', (
            SELECT coalesce(json_agg(json_build_object('run', r, 'job', j) ORDER BY r.id), '[]')
            FROM scheduled_job_runs AS r
            JOIN scheduled_jobs AS j ON j.id = r.job_id
            WHERE r.status = 'running'
              AND r.heartbeat_at < greatest(p_heartbeat_before, p_started_before)
              AND pipectl_is_stuck(r, p_heartbeat_before, p_started_before)),
        'running_runs', (
            SELECT coalesce(json_agg(x.r ORDER BY (x.r).id DESC), '[]')
            FROM (SELECT r FROM scheduled_job_runs AS r
                  WHERE r.status = 'running'
                  ORDER BY r.id DESC
                  LIMIT p_running_limit) AS x),
        'workers', (
            SELECT coalesce(json_agg(w ORDER BY w.last_seen_at DESC), '[]') FROM workers AS w)
    );
END;

SELECT pipectl_restrict_functions();
