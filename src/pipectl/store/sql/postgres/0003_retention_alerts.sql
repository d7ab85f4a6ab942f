-- pipectl schema v3: the start grace for runs that never heartbeated, history retention, and
-- alert bookkeeping.

-- The freshness state an alert was last sent for; workers claim a transition by changing it
-- (compare-and-set), so each transition is announced once.
ALTER TABLE dataset_status ADD COLUMN alerted_state text;

-- `runs prune` walks old finished runs oldest first; `jobs purge` old archived jobs.
CREATE INDEX scheduled_job_runs_finished ON scheduled_job_runs (finished_at)
    WHERE status <> 'running';
CREATE INDEX scheduled_jobs_archived ON scheduled_jobs (updated_at) WHERE status = 'archived';

-- A running run is stuck when its heartbeat is older than p_heartbeat_before; one that never
-- sent a heartbeat (heartbeat_at still equals started_at, as the claim set it) when it started
-- before p_started_before (the start grace).
CREATE FUNCTION pipectl_is_stuck(
    p_run scheduled_job_runs, p_heartbeat_before timestamptz, p_started_before timestamptz
) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_run.status = 'running' AND p_run.heartbeat_at < CASE
        WHEN p_run.heartbeat_at = p_run.started_at THEN p_started_before
        ELSE p_heartbeat_before END
$$;

DROP FUNCTION pipectl_stale_runs(timestamptz);
CREATE FUNCTION pipectl_stale_runs(p_heartbeat_before timestamptz, p_started_before timestamptz)
RETURNS SETOF jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('run', to_jsonb(r), 'job', to_jsonb(j))
    FROM scheduled_job_runs AS r
    JOIN scheduled_jobs AS j ON j.id = r.job_id
    WHERE r.status = 'running' AND pipectl_is_stuck(r, p_heartbeat_before, p_started_before)
    ORDER BY r.id
$$;

DROP FUNCTION pipectl_fail_stale_run(bigint, timestamptz, text, timestamptz, text, text, jsonb,
    text, timestamptz, integer, text, jsonb);
-- Like pipectl_finish_run for a stuck run; the stuck condition is re-checked in the same
-- UPDATE, so a run that finished or heartbeated since it was found is left alone.
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
    p_datasets jsonb
) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    closed_job_id bigint;
BEGIN
    UPDATE scheduled_job_runs AS r
    SET status = p_status, finished_at = p_finished_at, error_message = p_error_message,
        logs = p_logs, steps = p_steps
    WHERE r.id = p_run_id AND pipectl_is_stuck(r, p_heartbeat_before, p_started_before)
    RETURNING r.job_id INTO closed_job_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pipectl_apply_run_result(p_run_id, closed_job_id, p_finished_at, p_job_status,
        p_next_run_at, p_retry_count, p_last_error, p_datasets);
    RETURN true;
END
$$;

-- Finished runs older than the cutoff, oldest first, except each job's newest p_keep_last
-- (the subquery finds the p_keep_last-th newest run of the job; with fewer it is NULL).
CREATE FUNCTION pipectl_prunable_runs(p_finished_before timestamptz, p_keep_last integer)
RETURNS SETOF bigint
LANGUAGE sql STABLE AS $$
    SELECT r.id FROM scheduled_job_runs AS r
    WHERE r.status <> 'running' AND r.finished_at < p_finished_before
      AND r.id < (SELECT n.id FROM scheduled_job_runs AS n WHERE n.job_id = r.job_id
                  ORDER BY n.id DESC LIMIT 1 OFFSET p_keep_last - 1)
    ORDER BY r.finished_at
$$;

CREATE FUNCTION pipectl_prune_runs(
    p_finished_before timestamptz, p_keep_last integer, p_limit integer
) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    deleted integer;
BEGIN
    DELETE FROM scheduled_job_runs WHERE id IN (
        SELECT * FROM pipectl_prunable_runs(p_finished_before, p_keep_last) LIMIT p_limit);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;

CREATE FUNCTION pipectl_count_prunable_runs(p_finished_before timestamptz, p_keep_last integer)
RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM pipectl_prunable_runs(p_finished_before, p_keep_last)
$$;

CREATE FUNCTION pipectl_purge_archived_jobs(p_archived_before timestamptz, p_limit integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    deleted integer;
BEGIN
    DELETE FROM scheduled_jobs WHERE id IN (
        SELECT id FROM scheduled_jobs
        WHERE status = 'archived' AND updated_at < p_archived_before
        ORDER BY updated_at LIMIT p_limit);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;

CREATE FUNCTION pipectl_count_purgeable_jobs(p_archived_before timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM scheduled_jobs
    WHERE status = 'archived' AND updated_at < p_archived_before
$$;

CREATE FUNCTION pipectl_claim_alert(
    p_brand_id text, p_dataset text, p_expected text, p_new text
) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE dataset_status SET alerted_state = p_new
    WHERE coalesce(brand_id, '') = coalesce(p_brand_id, '') AND dataset = p_dataset
      AND alerted_state IS NOT DISTINCT FROM p_expected;
    RETURN FOUND;
END
$$;

-- The new functions get the grants of migration 0002: the service role only.
DO $$
DECLARE
    home CONSTANT oid := (SELECT relnamespace FROM pg_class
                          WHERE oid = 'scheduled_jobs'::regclass);
    outsider text;
    fn regprocedure;
BEGIN
    FOR fn IN
        SELECT p.oid::regprocedure FROM pg_proc AS p
        WHERE p.pronamespace = home AND p.proname LIKE 'pipectl\_%'
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
        FOREACH outsider IN ARRAY ARRAY['anon', 'authenticated'] LOOP
            CONTINUE WHEN NOT EXISTS (SELECT FROM pg_roles WHERE rolname = outsider);
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %I', fn, outsider);
        END LOOP;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', fn);
        END IF;
    END LOOP;
END
$$;
