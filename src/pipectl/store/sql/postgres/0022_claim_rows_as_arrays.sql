-- A claim returns each run and its job as arrays of column values, [run, job], each in the
-- field order of the record it becomes (models.Run, models.Job), as the status snapshot does:
-- no object keys to build, send and parse for every claimed row (docs/benchmarks.md). What it
-- claims, and how, is 0019's.
DROP FUNCTION pipectl_claim_due(text, timestamptz, integer);
CREATE FUNCTION pipectl_claim_due(p_worker_id text, p_now timestamptz, p_limit integer)
RETURNS SETOF json
LANGUAGE plpgsql AS $$
DECLARE
    need integer := p_limit;
    wanted integer;
    taken integer;
    unkeyed_ids bigint[];
    unkeyed_ats timestamptz[];
    unkeyed_at timestamptz := '-infinity';
    unkeyed_id bigint := 0;
    key_names text[];
    key_ats timestamptz[];
    key_versions bigint[];
    head_ids bigint[];
    head_ats timestamptz[];
    key_at timestamptz := '-infinity';
    key_name text := '';
    horizon timestamptz;
    any_stale boolean;
    picked bigint[];
    claimed json[];
    claimed_ids bigint[];
    lost_ids bigint[] := '{}';
    lost_keys text[] := '{}';
BEGIN
    WHILE need > 0 LOOP
        SELECT array_agg(page.id ORDER BY page.next_run_at, page.id),
            array_agg(page.next_run_at ORDER BY page.next_run_at, page.id)
        INTO unkeyed_ids, unkeyed_ats
        FROM (
            SELECT j.id, j.next_run_at FROM scheduled_jobs AS j
            WHERE j.status = 'active' AND j.concurrency_key IS NULL AND j.next_run_at <= p_now
              AND (j.next_run_at, j.id) > (unkeyed_at, unkeyed_id)
              AND j.id <> ALL (lost_ids)
            ORDER BY j.next_run_at, j.id
            LIMIT need
        ) AS page;

        SELECT array_agg(page.concurrency_key ORDER BY page.next_run_at, page.concurrency_key),
            array_agg(page.next_run_at ORDER BY page.next_run_at, page.concurrency_key),
            array_agg(page.version ORDER BY page.next_run_at, page.concurrency_key),
            array_agg(head.id ORDER BY page.next_run_at, page.concurrency_key),
            array_agg(head.next_run_at ORDER BY page.next_run_at, page.concurrency_key)
        INTO key_names, key_ats, key_versions, head_ids, head_ats
        FROM (
            SELECT k.* FROM concurrency_key_heads AS k
            WHERE k.next_run_at <= p_now
              AND (k.next_run_at, k.concurrency_key) > (key_at, key_name)
              AND k.concurrency_key <> ALL (lost_keys)
              AND NOT EXISTS (SELECT FROM scheduled_job_runs AS r
                              WHERE r.concurrency_key = k.concurrency_key
                                AND r.status = 'running')
            ORDER BY k.next_run_at, k.concurrency_key
            LIMIT need
        ) AS page
        LEFT JOIN LATERAL (
            SELECT j.id, j.next_run_at FROM scheduled_jobs AS j
            WHERE j.concurrency_key = page.concurrency_key AND j.status = 'active'
            ORDER BY j.next_run_at, j.id
            LIMIT 1
        ) AS head ON true;

        EXIT WHEN unkeyed_ids IS NULL AND key_names IS NULL;
        -- Everything up to here comes before anything a later round reads.
        horizon := least(
            CASE WHEN cardinality(unkeyed_ids) = need THEN unkeyed_ats[need] END,
            CASE WHEN cardinality(key_names) = need THEN key_ats[need] END);

        -- A key whose head is not due, or lies past the horizon (its row's time is early), is
        -- not taken this round; its row is raised to its head, where a later round or claim
        -- reads it again in its place.
        any_stale := false;
        FOR i IN 1 .. coalesce(cardinality(key_names), 0) LOOP
            IF (horizon IS NULL OR key_ats[i] <= horizon)
               AND (head_ats[i] IS NULL OR head_ats[i] > p_now OR head_ats[i] > horizon) THEN
                any_stale := true;
            END IF;
        END LOOP;
        IF any_stale THEN
            WITH stale AS (
                SELECT s.* FROM unnest(key_names, key_ats, key_versions, head_ats)
                    AS s (concurrency_key, next_run_at, version, head_at)
                WHERE (s.head_at IS NULL OR s.head_at > p_now OR s.head_at > horizon)
                  AND (horizon IS NULL OR s.next_run_at <= horizon)
            ), unchanged AS (
                SELECT k.concurrency_key, stale.head_at FROM concurrency_key_heads AS k
                JOIN stale ON stale.concurrency_key = k.concurrency_key
                    AND stale.version = k.version
                ORDER BY k.concurrency_key
                FOR UPDATE OF k SKIP LOCKED
            ), raised AS (
                UPDATE concurrency_key_heads AS k
                SET next_run_at = unchanged.head_at, version = k.version + 1
                FROM unchanged
                WHERE k.concurrency_key = unchanged.concurrency_key AND unchanged.head_at IS NOT NULL
            )
            DELETE FROM concurrency_key_heads AS k USING unchanged
            WHERE k.concurrency_key = unchanged.concurrency_key AND unchanged.head_at IS NULL;
        END IF;

        SELECT array_agg(c.id ORDER BY c.next_run_at, c.id) INTO picked
        FROM (
            SELECT c.id, c.next_run_at FROM (
                SELECT u.id, u.next_run_at
                FROM unnest(unkeyed_ids, unkeyed_ats) AS u (id, next_run_at)
                UNION ALL
                SELECT h.id, h.next_run_at FROM unnest(head_ids, head_ats) AS h (id, next_run_at)
                WHERE h.next_run_at <= p_now
            ) AS c
            WHERE horizon IS NULL OR c.next_run_at <= horizon
            ORDER BY c.next_run_at, c.id
            LIMIT need
        ) AS c;
        wanted := coalesce(cardinality(picked), 0);

        WITH due AS MATERIALIZED (
            SELECT j.* FROM scheduled_jobs AS j
            WHERE j.id = ANY (picked) AND j.status = 'active' AND j.next_run_at <= p_now
            FOR UPDATE SKIP LOCKED
        ), free AS MATERIALIZED (
            SELECT due.* FROM due
            WHERE due.concurrency_key IS NULL
               OR pg_try_advisory_xact_lock(
                    (SELECT hashtext(relnamespace::regnamespace::text) FROM pg_class
                     WHERE oid = 'scheduled_jobs'::regclass),
                    hashtext(due.concurrency_key))
        ), run AS (
            INSERT INTO scheduled_job_runs (job_id, attempt, status, started_at, heartbeat_at,
                worker_id, lease_token, concurrency_key)
            SELECT free.id, free.retry_count + 1, 'running', p_now, p_now, p_worker_id,
                replace(gen_random_uuid()::text, '-', ''), free.concurrency_key
            FROM free ORDER BY free.next_run_at, free.id
            ON CONFLICT (concurrency_key) WHERE status = 'running' AND concurrency_key IS NOT NULL
                DO NOTHING
            RETURNING *
        ), job AS (
            UPDATE scheduled_jobs AS j
            SET status = 'running', last_run_id = run.id, updated_at = p_now
            FROM run WHERE j.id = run.job_id
            RETURNING j.*
        )
        SELECT coalesce(array_agg(json_build_array(
                   json_build_array(
                       run.id, run.job_id, run.attempt, run.status, run.started_at,
                       run.finished_at, run.heartbeat_at, run.worker_id, run.lease_token,
                       run.error_message, run.logs, run.steps, run.concurrency_key,
                       run.cancel_requested_at, run.cancel_requested_by, run.brand_id,
                       run.triggered_by),
                   json_build_array(
                       job.id, job.brand_id, job.job_type, job.name, job.schedule_type,
                       job.cron_expression, job.timezone, job.next_run_at, job.status,
                       job.parameters, job.max_retries, job.retry_count, job.retry_base_seconds,
                       job.retry_cap_seconds, job.last_error, job.timeout_seconds,
                       job.dedupe_key, job.concurrency_key, job.last_run_id, job.created_at,
                       job.updated_at, job.revision, job.inputs, job.max_hold_seconds,
                       job.held_since, job.waiting_on, job.triggered_at))
                   ORDER BY job.next_run_at, job.id), '{}'),
            coalesce(array_agg(job.id), '{}')
        INTO claimed, claimed_ids
        FROM run JOIN job ON job.id = run.job_id;
        RETURN QUERY SELECT c.claim FROM unnest(claimed) WITH ORDINALITY AS c (claim, n)
            ORDER BY c.n;
        taken := cardinality(claimed);
        need := need - taken;
        EXIT WHEN need = 0;

        -- Jobs picked but not taken were lost to another claim (locked, or their key taken):
        -- the same pages are read again without them, so that this claim takes what is due
        -- behind them instead of coming back short (a worker with --once would stop there).
        IF taken < wanted THEN
            lost_ids := lost_ids || ARRAY(
                SELECT p.id FROM unnest(picked) AS p (id) WHERE p.id <> ALL (claimed_ids));
            lost_keys := lost_keys || ARRAY(
                SELECT h.concurrency_key FROM unnest(key_names, head_ids) AS h (concurrency_key, id)
                WHERE h.id = ANY (picked) AND h.id <> ALL (claimed_ids));
            CONTINUE;
        END IF;
        -- Both lists were read to their end.
        EXIT WHEN horizon IS NULL;
        IF unkeyed_ats[1] <= horizon THEN
            SELECT u.next_run_at, u.id INTO unkeyed_at, unkeyed_id
            FROM unnest(unkeyed_ids, unkeyed_ats) AS u (id, next_run_at)
            WHERE u.next_run_at <= horizon
            ORDER BY u.next_run_at DESC, u.id DESC
            LIMIT 1;
        END IF;
        IF key_ats[1] <= horizon THEN
            SELECT k.next_run_at, k.concurrency_key INTO key_at, key_name
            FROM unnest(key_names, key_ats) AS k (concurrency_key, next_run_at)
            WHERE k.next_run_at <= horizon
            ORDER BY k.next_run_at DESC, k.concurrency_key DESC
            LIMIT 1;
        END IF;
    END LOOP;
END
$$;

SELECT pipectl_restrict_functions();
