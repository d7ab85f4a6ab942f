-- Several outcomes recorded in one transaction: a worker that ran a batch of quick jobs commits
-- their outcomes together (one durable commit instead of one per run). Each outcome is still
-- all or nothing with its job and datasets, and guarded by its own lease, exactly as
-- pipectl_finish_run records it alone.
--
-- p_runs: [{"run_id", "lease_token", "status", "finished_at", "error_message", "logs", "steps",
--           "job_status", "next_run_at", "retry_count", "last_error", "datasets"}, …]
-- Returns one boolean per outcome, in the order given: false where the lease was lost.
CREATE FUNCTION pipectl_finish_runs(p_runs jsonb) RETURNS SETOF boolean
LANGUAGE plpgsql AS $$
DECLARE
    outcome jsonb;
BEGIN
    FOR outcome IN SELECT value FROM jsonb_array_elements(p_runs) WITH ORDINALITY ORDER BY ordinality
    LOOP
        RETURN NEXT pipectl_finish_run(
            (outcome->>'run_id')::bigint,
            outcome->>'lease_token',
            outcome->>'status',
            (outcome->>'finished_at')::timestamptz,
            outcome->>'error_message',
            outcome->>'logs',
            outcome->'steps',
            outcome->>'job_status',
            (outcome->>'next_run_at')::timestamptz,
            (outcome->>'retry_count')::integer,
            outcome->>'last_error',
            outcome->'datasets');
    END LOOP;
END
$$;

-- The new function gets the grants of migration 0002: the service role only.
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
