-- pipectl schema: operator control.

-- Several operator edits in one transaction (`jobs pause --brand acme`): p_updates is
-- [{"id": 3, "changes": {…}}, …], each applied as pipectl_update_job applies it, in id order
-- (so two concurrent calls lock their jobs in the same order). Returns the jobs changed.
CREATE FUNCTION pipectl_update_jobs(
    p_updates jsonb,
    p_now timestamptz,
    p_only_if_status text[] DEFAULT NULL
) RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
DECLARE
    item jsonb;
    job jsonb;
BEGIN
    FOR item IN
        SELECT u.value FROM jsonb_array_elements(p_updates) AS u
        ORDER BY (u.value ->> 'id')::bigint
    LOOP
        job := pipectl_update_job((item ->> 'id')::bigint, item -> 'changes', p_now,
                                  p_only_if_status);
        IF job IS NOT NULL THEN
            RETURN NEXT job;
        END IF;
    END LOOP;
END
$$;

-- A run an operator cancelled ends `cancelled`. The cancellation is asked for through the
-- store (from any machine) and read back by the worker holding the run at its heartbeat.
ALTER TABLE scheduled_job_runs
    DROP CONSTRAINT scheduled_job_runs_status_check,
    ADD CONSTRAINT scheduled_job_runs_status_check
        CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
    ADD COLUMN cancel_requested_at timestamptz,
    ADD COLUMN cancel_requested_by text;

-- Ask for a running run to be cancelled; the run, or NULL when it is not running. Asking again
-- keeps the first request.
CREATE FUNCTION pipectl_request_cancel(
    p_run_id bigint,
    p_by text,
    p_now timestamptz
) RETURNS jsonb
LANGUAGE sql AS $$
    UPDATE scheduled_job_runs AS r
    SET cancel_requested_at = coalesce(r.cancel_requested_at, p_now),
        cancel_requested_by = coalesce(r.cancel_requested_by, p_by)
    WHERE r.id = p_run_id AND r.status = 'running'
    RETURNING to_jsonb(r.*)
$$;

-- Of these runs, the running ones whose cancellation was asked for: [{"id", "by"}].
CREATE FUNCTION pipectl_cancel_requests(p_run_ids bigint[]) RETURNS SETOF jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', r.id, 'by', r.cancel_requested_by)
    FROM scheduled_job_runs AS r
    WHERE r.id = ANY (p_run_ids) AND r.status = 'running' AND r.cancel_requested_at IS NOT NULL
    ORDER BY r.id
$$;

-- `runs wait` and `enqueue --wait` LISTEN here rather than poll: a run's id, once it ends.
CREATE FUNCTION pipectl_notify_run_ended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pipectl_runs', NEW.id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER scheduled_job_runs_ended
    AFTER UPDATE OF status ON scheduled_job_runs
    FOR EACH ROW WHEN (OLD.status = 'running' AND NEW.status <> 'running')
    EXECUTE FUNCTION pipectl_notify_run_ended();

SELECT pipectl_restrict_functions();
