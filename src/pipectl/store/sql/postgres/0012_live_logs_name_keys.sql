-- pipectl schema v12: live run logs, and concurrency keys by job name.

-- The log so far of each running run, written by the worker holding it at each heartbeat, so
-- that `runs logs --follow` reads it as the run goes and a recovered run keeps it. p_runs is
-- [{"run_id", "lease_token", "logs"}]; a run no longer running under that lease is left alone
-- (its outcome wrote the final log).
CREATE FUNCTION pipectl_write_run_logs(p_runs jsonb) RETURNS void
LANGUAGE sql AS $$
    UPDATE scheduled_job_runs AS r
    SET logs = o.logs
    FROM jsonb_to_recordset(p_runs) AS o (run_id bigint, lease_token text, logs text)
    WHERE r.id = o.run_id AND r.lease_token = o.lease_token AND r.status = 'running'
$$;

-- The default concurrency key was `job_type:brand`; it is now `name:brand` for a job with a
-- name of its own (not the `job_type brand` a job given none gets), as
-- pipectl.concurrency.default_concurrency_key says (`:brand` left out for a global job; a key
-- over 200 characters keeps 183 and ends in `~` and 16 hex digits of its sha256). A key equal
-- to its job's old default moves to the new one; any other key was given and stays. The
-- triggers of v8 lower the new key's head row; a row of a key left without active jobs is
-- deleted by the next claim that reads it. Running runs keep the key they were claimed with.
WITH keys AS (
    SELECT j.id,
        j.job_type || coalesce(':' || j.brand_id, '') AS old_key,
        CASE WHEN j.name = j.job_type || coalesce(' ' || j.brand_id, '') THEN j.job_type
             ELSE j.name END || coalesce(':' || j.brand_id, '') AS new_key
    FROM scheduled_jobs AS j
    WHERE j.concurrency_key IS NOT NULL
), defaults AS (
    SELECT k.id,
        CASE WHEN length(k.old_key) <= 200 THEN k.old_key
             ELSE left(k.old_key, 183) || '~'
                  || left(encode(sha256(convert_to(k.old_key, 'UTF8')), 'hex'), 16)
        END AS old_default,
        CASE WHEN length(k.new_key) <= 200 THEN k.new_key
             ELSE left(k.new_key, 183) || '~'
                  || left(encode(sha256(convert_to(k.new_key, 'UTF8')), 'hex'), 16)
        END AS new_default
    FROM keys AS k
)
UPDATE scheduled_jobs AS j
SET concurrency_key = d.new_default
FROM defaults AS d
WHERE j.id = d.id AND j.concurrency_key = d.old_default AND d.new_default <> d.old_default;

SELECT pipectl_restrict_functions();
