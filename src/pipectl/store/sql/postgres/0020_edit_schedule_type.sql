-- An operator's edit may change a job's schedule_type: `jobs edit --cron` gives a job that runs
-- on its inputs (`datasets`) a cron as well, making it `recurring` with its inputs kept, as
-- `jobs add --after D --cron C` makes it. As in 0006, with schedule_type editable.
CREATE OR REPLACE FUNCTION pipectl_update_job(
    p_job_id bigint,
    p_changes jsonb,
    p_now timestamptz,
    p_only_if_status text[] DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    editable CONSTANT text[] := ARRAY['name', 'schedule_type', 'cron_expression', 'timezone',
        'next_run_at', 'status', 'parameters', 'max_retries', 'retry_count', 'timeout_seconds',
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
    SET (name, schedule_type, cron_expression, timezone, next_run_at, status, parameters,
         max_retries, retry_count, timeout_seconds, concurrency_key, last_error, updated_at,
         revision)
      = (SELECT c.name, c.schedule_type, c.cron_expression, c.timezone, c.next_run_at,
                c.status, c.parameters, c.max_retries, c.retry_count, c.timeout_seconds,
                c.concurrency_key, c.last_error, p_now, j.revision + 1
         FROM jsonb_populate_record(j, p_changes) AS c)
    WHERE j.id = p_job_id
      AND (coalesce(cardinality(p_only_if_status), 0) = 0 OR j.status = ANY (p_only_if_status))
    RETURNING to_jsonb(j.*) INTO job;
    RETURN job;
END
$$;

SELECT pipectl_restrict_functions();
