-- Every pipectl function finds pipectl's tables whatever search_path the session has: behind a
-- transaction pooler a session setting is another client's leftover, and pipectl sets none
-- (each call names its function with the schema).
--
-- Two ways, both here:
-- * Most functions run with search_path pinned to the schema they live in.
--   pipectl_restrict_functions() now pins as well as grants; every migration that adds or
--   replaces functions already ends with it (CREATE OR REPLACE drops a function's settings), so
--   later functions are pinned too.
-- * A SET clause stops the planner from inlining a SQL function, and the reads whose plans
--   depend on their arguments (a brand's status is an index range, every brand's a scan) must
--   stay inlined. Those get SQL-standard bodies (BEGIN ATOMIC), whose names are resolved when
--   the function is created, and are left unpinned, as are IMMUTABLE SQL helpers, which their
--   callers inline (pipectl_is_stuck in the sweep's index scan) and which then run with their
--   caller's pinned path. Whole-row references (`j`, not `j.*`) keep columns that later
--   migrations add.
CREATE OR REPLACE FUNCTION pipectl_restrict_functions() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    home CONSTANT oid := (SELECT relnamespace FROM pg_class
                          WHERE oid = 'scheduled_jobs'::regclass);
    outsider text;
    fn regprocedure;
    inlined boolean;
BEGIN
    FOR fn, inlined IN
        SELECT p.oid::regprocedure,
               p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'sql')
               AND (p.provolatile = 'i' OR p.prosqlbody IS NOT NULL)
        FROM pg_proc AS p
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
        IF inlined THEN
            EXECUTE format('ALTER FUNCTION %s RESET search_path', fn);
        ELSE
            EXECUTE format('ALTER FUNCTION %s SET search_path TO %I', fn,
                           (SELECT nspname FROM pg_namespace WHERE oid = home));
        END IF;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION pipectl_list_jobs(
    p_all_brands boolean DEFAULT true,
    p_brand_id text DEFAULT NULL,
    p_job_type text DEFAULT NULL,
    p_statuses text[] DEFAULT NULL,
    p_in_backoff boolean DEFAULT false,
    p_limit integer DEFAULT NULL
) RETURNS SETOF jsonb
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT to_jsonb(j) FROM scheduled_jobs AS j
    WHERE (p_all_brands OR j.brand_id = p_brand_id OR (p_brand_id IS NULL AND j.brand_id IS NULL))
      AND (p_job_type IS NULL OR j.job_type = p_job_type)
      AND (coalesce(cardinality(p_statuses), 0) = 0 OR j.status = ANY (p_statuses))
      AND (NOT p_in_backoff
           OR (j.retry_count > 0 AND j.status IN ('active', 'running', 'paused')))
    ORDER BY j.id
    LIMIT p_limit;
END;

CREATE OR REPLACE FUNCTION pipectl_list_runs(
    p_job_id bigint DEFAULT NULL,
    p_all_brands boolean DEFAULT true,
    p_brand_id text DEFAULT NULL,
    p_status text DEFAULT NULL,
    p_limit integer DEFAULT 50
) RETURNS SETOF jsonb
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT to_jsonb(r) FROM scheduled_job_runs AS r
    WHERE (p_job_id IS NULL OR r.job_id = p_job_id)
      AND (p_status IS NULL OR r.status = p_status)
      AND (p_all_brands OR EXISTS (
            SELECT 1 FROM scheduled_jobs AS j
            WHERE j.id = r.job_id
              AND (j.brand_id = p_brand_id OR (p_brand_id IS NULL AND j.brand_id IS NULL))))
    ORDER BY r.id DESC
    LIMIT p_limit;
END;

CREATE OR REPLACE FUNCTION pipectl_dataset_statuses(
    p_all_brands boolean DEFAULT true,
    p_brand_id text DEFAULT NULL
) RETURNS SETOF jsonb
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT to_jsonb(d) FROM dataset_status AS d
    WHERE p_all_brands OR coalesce(d.brand_id, '') = coalesce(p_brand_id, '')
    ORDER BY coalesce(d.brand_id, '') COLLATE "C", d.dataset COLLATE "C";
END;

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
        'jobs', (SELECT coalesce(json_agg(c.job ORDER BY (c.job).id), '[]') FROM jobs AS c),
        'last_runs', (
            SELECT coalesce(json_agg(r ORDER BY r.id), '[]')
            FROM jobs AS c JOIN scheduled_job_runs AS r ON r.id = (c.job).last_run_id),
        'datasets', (
            SELECT coalesce(json_agg(d ORDER BY coalesce(d.brand_id, '') COLLATE "C",
                                                d.dataset COLLATE "C"), '[]')
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
