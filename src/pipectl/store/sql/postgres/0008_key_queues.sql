-- pipectl schema v8: a claim reads one job per concurrency key, however many wait behind it, and
-- its key locks are its own schema's.
--
-- The jobs of one key are a queue, of which only the oldest active job (the head) may run, and
-- only while the key has no running run. So that no claim reads the due jobs waiting behind a
-- taken key, a claim reads due jobs from two places, merged in due order:
--   * jobs without a key, from their own due index;
--   * one head per key: concurrency_key_heads lists every key with active jobs, in the order of
--     a time at or before its head's next_run_at, and the head itself is one probe of
--     scheduled_jobs_key_queue.

-- Replaces scheduled_jobs_due (every active job in due order), which nothing else reads: a
-- planner that took it to find a key's head would read every due job before it.
DROP INDEX scheduled_jobs_due;
CREATE INDEX scheduled_jobs_due_unkeyed ON scheduled_jobs (next_run_at, id)
    WHERE status = 'active' AND concurrency_key IS NULL;
CREATE INDEX scheduled_jobs_key_queue ON scheduled_jobs (concurrency_key, next_run_at, id)
    WHERE status = 'active' AND concurrency_key IS NOT NULL;

-- A key's next_run_at is a lower bound, never later than that of the key's oldest active job:
-- every write that makes a job active or moves it earlier lowers it (the triggers below), so
-- that concurrent writers need not agree on which job is the head. A claim raises it to the
-- head it read (or deletes the row of a key without active jobs) only when nobody wrote the row
-- since the claim read it (`version`) and nobody is writing it now (SKIP LOCKED).
CREATE TABLE concurrency_key_heads (
    concurrency_key text PRIMARY KEY,
    next_run_at     timestamptz NOT NULL,
    version         bigint NOT NULL DEFAULT 0
);
CREATE INDEX concurrency_key_heads_due ON concurrency_key_heads (next_run_at, concurrency_key);

-- For the service role only, as every pipectl table (0002).
ALTER TABLE concurrency_key_heads ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON concurrency_key_heads FROM PUBLIC;
DO $$
DECLARE
    outsider text;
BEGIN
    FOREACH outsider IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        CONTINUE WHEN NOT EXISTS (SELECT FROM pg_roles WHERE rolname = outsider);
        EXECUTE format('REVOKE ALL ON concurrency_key_heads FROM %I', outsider);
    END LOOP;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON concurrency_key_heads TO service_role;
    END IF;
END
$$;

INSERT INTO concurrency_key_heads (concurrency_key, next_run_at)
SELECT concurrency_key, min(next_run_at) FROM scheduled_jobs
WHERE status = 'active' AND concurrency_key IS NOT NULL AND next_run_at IS NOT NULL
GROUP BY concurrency_key;

-- After a job is inserted active with a key, or becomes active, or moves (the claim's and a
-- one-time job's last update leave it alone, so that neither pays for it).
CREATE FUNCTION pipectl_lower_key_head() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO concurrency_key_heads AS h (concurrency_key, next_run_at)
    VALUES (NEW.concurrency_key, NEW.next_run_at)
    ON CONFLICT (concurrency_key) DO UPDATE
    SET next_run_at = least(h.next_run_at, excluded.next_run_at), version = h.version + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER scheduled_jobs_inserted_head AFTER INSERT ON scheduled_jobs
    FOR EACH ROW
    WHEN (NEW.status = 'active' AND NEW.concurrency_key IS NOT NULL
          AND NEW.next_run_at IS NOT NULL)
    EXECUTE FUNCTION pipectl_lower_key_head();
CREATE TRIGGER scheduled_jobs_updated_head
    AFTER UPDATE OF status, next_run_at, concurrency_key ON scheduled_jobs
    FOR EACH ROW
    WHEN (NEW.status = 'active' AND NEW.concurrency_key IS NOT NULL
          AND NEW.next_run_at IS NOT NULL)
    EXECUTE FUNCTION pipectl_lower_key_head();

-- Claims up to p_limit due jobs, oldest due first, at most one per key: each becomes `running`
-- with a new `running` run owned by p_worker_id. Returns {"run": …, "job": …} per claim, in due
-- order.
--
-- A round reads the next `need` due jobs without a key and the heads of the next `need` due keys
-- that have no running run (one probe of the running-run index per key passed over), merges
-- them in due order up to the horizon, past which either list may hold more, and claims the
-- first `need` of them, except
--   * a key another claim is taking right now: a try-lock on the key, in a lock space of this
--     schema's own (two installs in different schemas of one database share no key lock);
--     waiting could deadlock two claims that took each other's keys;
--   * a job another transaction holds (SKIP LOCKED), or no longer active and due;
--   * a key whose running run another claim created since (ON CONFLICT on the running-run index).
-- A key whose row is due but whose head is not (or which has no active job left) gets its row
-- raised (or deleted) as the table's comment says. Rounds go on, each after the last, until
-- p_limit are claimed or nothing due is left: a key costs one row per claim however many jobs
-- wait behind it.
CREATE OR REPLACE FUNCTION pipectl_claim_due(p_worker_id text, p_now timestamptz, p_limit integer)
RETURNS SETOF jsonb
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
BEGIN
    WHILE need > 0 LOOP
        SELECT array_agg(page.id ORDER BY page.next_run_at, page.id),
            array_agg(page.next_run_at ORDER BY page.next_run_at, page.id)
        INTO unkeyed_ids, unkeyed_ats
        FROM (
            SELECT j.id, j.next_run_at FROM scheduled_jobs AS j
            WHERE j.status = 'active' AND j.concurrency_key IS NULL AND j.next_run_at <= p_now
              AND (j.next_run_at, j.id) > (unkeyed_at, unkeyed_id)
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

        RETURN QUERY
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
        SELECT jsonb_build_object('run', to_jsonb(run), 'job', to_jsonb(job))
        FROM run JOIN job ON job.id = run.job_id
        ORDER BY job.next_run_at, job.id;
        GET DIAGNOSTICS taken = ROW_COUNT;
        need := need - taken;

        -- The first `need` were taken (or lost to other claims: the rest is left to the next
        -- call), or both lists were read to their end.
        EXIT WHEN wanted = need + taken OR horizon IS NULL;
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
