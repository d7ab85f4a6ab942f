-- pipectl schema v4: a worker's batches. Due jobs are claimed a page at a time and the outcomes
-- of a batch of quick runs are recorded in one transaction; neither the claim nor the sweep
-- reads every running run any more.

-- Claims up to p_limit due jobs, oldest due first: each becomes `running` with a new `running`
-- run owned by p_worker_id. Returns {"run": …, "job": …} per claim, in due order.
--
-- Set-wise, a page of due jobs at a time (version 1 took one job per statement, from the start
-- of the due index each time). A page is the next due jobs after the last one seen, locked
-- with SKIP LOCKED so that jobs other workers are claiming right now are passed over; of each
-- page, the first job of each concurrency key is claimed unless
--   * another claim is taking that key right now: a try-lock on the key (waiting on it could
--     deadlock two claims that took each other's keys), or
--   * the key has a running run, or one this call just created: the partial unique index of
--     running runs, through ON CONFLICT DO NOTHING.
-- Later jobs of a key taken or busy are refused by the same index. Each due job is looked at
-- once, so due jobs waiting on busy keys cost one index entry each, not one statement each.
-- (Version 1 also filtered on NOT EXISTS over running runs, which the planner answered with a
-- read of every running-run index entry, live or dead, or with a sequential scan of all runs
-- after statistics taken on an empty table: a drain of 4,000 jobs went from 4.5 to 12 ms per
-- claim of 32; docs/benchmarks.md.)
CREATE OR REPLACE FUNCTION pipectl_claim_due(p_worker_id text, p_now timestamptz, p_limit integer)
RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
DECLARE
    page_ids bigint[];
    after_at timestamptz := '-infinity';
    after_id bigint := 0;
    claimed integer := 0;
    taken integer;
BEGIN
    WHILE claimed < p_limit LOOP
        SELECT array_agg(page.id ORDER BY page.next_run_at, page.id)
        INTO page_ids
        FROM (
            SELECT j.id, j.next_run_at FROM scheduled_jobs AS j
            WHERE j.status = 'active' AND j.next_run_at <= p_now
              AND (j.next_run_at, j.id) > (after_at, after_id)
            ORDER BY j.next_run_at, j.id
            LIMIT p_limit - claimed
            FOR UPDATE SKIP LOCKED
        ) AS page;
        EXIT WHEN page_ids IS NULL;
        SELECT j.next_run_at, j.id INTO after_at, after_id
        FROM scheduled_jobs AS j WHERE j.id = page_ids[cardinality(page_ids)];

        RETURN QUERY
        WITH due AS MATERIALIZED (
            SELECT j.*, page.position FROM unnest(page_ids) WITH ORDINALITY AS page (id, position)
            JOIN scheduled_jobs AS j ON j.id = page.id
            WHERE j.concurrency_key IS NULL
               OR pg_try_advisory_xact_lock(2, hashtext(j.concurrency_key))
        ), run AS (
            INSERT INTO scheduled_job_runs (job_id, attempt, status, started_at, heartbeat_at,
                worker_id, lease_token, concurrency_key)
            SELECT due.id, due.retry_count + 1, 'running', p_now, p_now, p_worker_id,
                replace(gen_random_uuid()::text, '-', ''), due.concurrency_key
            FROM due ORDER BY due.position
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
        claimed := claimed + taken;
    END LOOP;
END
$$;

-- The recovery sweep, every poll cycle: as in version 3, with a range on heartbeat_at (a stuck
-- run's heartbeat is older than one of the two cutoffs), so that it reads the old entries of
-- the running-run index only, not those of every run that finished since the last vacuum.
CREATE OR REPLACE FUNCTION pipectl_stale_runs(p_heartbeat_before timestamptz,
    p_started_before timestamptz)
RETURNS SETOF jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('run', to_jsonb(r), 'job', to_jsonb(j))
    FROM scheduled_job_runs AS r
    JOIN scheduled_jobs AS j ON j.id = r.job_id
    WHERE r.status = 'running'
      AND r.heartbeat_at < greatest(p_heartbeat_before, p_started_before)
      AND pipectl_is_stuck(r, p_heartbeat_before, p_started_before)
    ORDER BY r.id
$$;

-- The outcomes in p_runs as rows, in the order given (position). See pipectl_finish_runs.
CREATE FUNCTION pipectl_outcomes(p_runs jsonb)
RETURNS TABLE (run_id bigint, lease_token text, status text, finished_at timestamptz,
    error_message text, logs text, steps jsonb, job_status text, next_run_at timestamptz,
    retry_count integer, last_error text, datasets jsonb, "position" bigint)
LANGUAGE sql IMMUTABLE AS $$
    SELECT * FROM ROWS FROM (jsonb_to_recordset(p_runs) AS (run_id bigint, lease_token text,
            status text, finished_at timestamptz, error_message text, logs text, steps jsonb,
            job_status text, next_run_at timestamptz, retry_count integer, last_error text,
            datasets jsonb))
        WITH ORDINALITY
$$;

-- Records several outcomes in one transaction (a worker commits a batch of quick runs
-- together: one durable commit instead of one per run). Each outcome is what
-- pipectl_finish_run records alone, under its own lease guard: the run, its job's next state
-- and its datasets.
--
-- p_runs: [{"run_id", "lease_token", "status", "finished_at", "error_message", "logs", "steps",
--           "job_status", "next_run_at", "retry_count", "last_error", "datasets"}, …]
-- Returns one boolean per outcome, in the order given: false where the lease was lost (and
-- nothing of that outcome is written).
--
-- Runs and jobs are updated set-wise (a run per row of plpgsql cost 0.24 ms per outcome
-- against 0.07 ms so); datasets one row at a time, because two outcomes in a batch may touch
-- the same dataset, which one INSERT … ON CONFLICT cannot update twice.
CREATE FUNCTION pipectl_finish_runs(p_runs jsonb) RETURNS SETOF boolean
LANGUAGE plpgsql AS $$
DECLARE
    closed_ids bigint[];
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
            next_run_at = o.next_run_at, retry_count = o.retry_count,
            last_error = o.last_error, updated_at = o.finished_at
        FROM closed JOIN pipectl_outcomes(p_runs) AS o ON o.run_id = closed.id
        WHERE j.id = closed.job_id
    )
    SELECT coalesce(array_agg(closed.id), '{}') INTO closed_ids FROM closed;

    -- In key order across the batch, as pipectl_apply_run_result does within one run, so that
    -- two batches sharing datasets lock them in the same order; ties in the order given.
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

    RETURN QUERY SELECT o.run_id = ANY (closed_ids)
        FROM pipectl_outcomes(p_runs) AS o ORDER BY o.position;
END
$$;

-- One dataset's attempt (and success) at p_finished_at by run p_run_id. Timestamps only move
-- forward: a run that finishes late cannot make data look older. (greatest() ignores NULLs.)
-- The upsert of pipectl_apply_run_result (0001), for the batch above.
CREATE FUNCTION pipectl_record_dataset(
    p_run_id bigint,
    p_finished_at timestamptz,
    p_brand_id text,
    p_dataset text,
    p_succeeded boolean,
    p_error text
) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO dataset_status AS d (brand_id, dataset, last_success_at, last_attempt_at,
        last_status, last_error, last_run_id, updated_at)
    VALUES (p_brand_id, p_dataset,
        CASE WHEN p_succeeded THEN p_finished_at END, p_finished_at,
        CASE WHEN p_succeeded THEN 'completed' ELSE 'failed' END,
        CASE WHEN p_succeeded THEN NULL ELSE p_error END,
        p_run_id, p_finished_at)
    ON CONFLICT ((coalesce(brand_id, '')), dataset) DO UPDATE SET
        last_success_at = greatest(d.last_success_at, excluded.last_success_at),
        last_status = CASE WHEN d.last_attempt_at IS NULL
            OR d.last_attempt_at <= excluded.last_attempt_at
            THEN excluded.last_status ELSE d.last_status END,
        last_error = CASE WHEN d.last_attempt_at IS NULL
            OR d.last_attempt_at <= excluded.last_attempt_at
            THEN excluded.last_error ELSE d.last_error END,
        last_run_id = CASE WHEN d.last_attempt_at IS NULL
            OR d.last_attempt_at <= excluded.last_attempt_at
            THEN excluded.last_run_id ELSE d.last_run_id END,
        last_attempt_at = greatest(d.last_attempt_at, excluded.last_attempt_at),
        updated_at = excluded.updated_at
$$;

-- Every pipectl_* function in pipectl's schema gets the grants of migration 0002: EXECUTE for
-- the service role only (where Supabase's roles exist). A migration that adds a function ends
-- with `SELECT pipectl_restrict_functions();`; running it again changes nothing.
CREATE FUNCTION pipectl_restrict_functions() RETURNS void
LANGUAGE plpgsql AS $$
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

SELECT pipectl_restrict_functions();
