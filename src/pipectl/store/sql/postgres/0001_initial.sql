-- pipectl schema v1 for PostgreSQL: the tables, and the store's whole API as pipectl_* functions.
--
-- Both the postgres backend (psycopg) and the supabase backend (PostgREST `rpc`) call these
-- functions with named arguments, so every parameter is named `p_…` and results are jsonb
-- documents (`to_jsonb` of a row: timestamps as ISO 8601 strings), sets of them, booleans or
-- nothing. The functions hold no policy: the engine computes next_run_at, retry_count and
-- statuses and passes them in. They rely on READ COMMITTED (the default): each statement in a
-- function sees what other transactions committed before it started.

CREATE TABLE scheduled_jobs (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id           text,                          -- NULL = global (cross-brand)
    job_type           text NOT NULL,
    name               text NOT NULL,
    schedule_type      text NOT NULL CHECK (schedule_type IN ('recurring', 'one_time')),
    cron_expression    text,
    timezone           text NOT NULL DEFAULT 'UTC',
    next_run_at        timestamptz,
    status             text NOT NULL
        CHECK (status IN ('active', 'paused', 'running', 'completed', 'failed', 'archived')),
    parameters         jsonb NOT NULL DEFAULT '{}',
    max_retries        integer NOT NULL,
    retry_count        integer NOT NULL DEFAULT 0,   -- consecutive failures
    retry_base_seconds integer NOT NULL,
    retry_cap_seconds  integer NOT NULL,
    last_error         text,
    timeout_seconds    double precision,
    dedupe_key         text,
    concurrency_key    text,
    last_run_id        bigint,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
-- The claim reads this index in due order and stops as soon as it has enough.
CREATE INDEX scheduled_jobs_due ON scheduled_jobs (next_run_at, id) WHERE status = 'active';
CREATE INDEX scheduled_jobs_dedupe ON scheduled_jobs (dedupe_key)
    WHERE status = 'active' AND dedupe_key IS NOT NULL;
CREATE INDEX scheduled_jobs_brand ON scheduled_jobs (brand_id, id);

CREATE TABLE scheduled_job_runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          bigint NOT NULL REFERENCES scheduled_jobs (id) ON DELETE CASCADE,
    attempt         integer NOT NULL,
    status          text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    heartbeat_at    timestamptz,
    worker_id       text,
    lease_token     text NOT NULL,
    concurrency_key text,
    error_message   text,
    logs            text NOT NULL DEFAULT '',
    steps           jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX scheduled_job_runs_job ON scheduled_job_runs (job_id, id);
CREATE INDEX scheduled_job_runs_running ON scheduled_job_runs (heartbeat_at)
    WHERE status = 'running';
-- At most one running run per concurrency key: the run row is the lock.
CREATE UNIQUE INDEX scheduled_job_runs_concurrency ON scheduled_job_runs (concurrency_key)
    WHERE status = 'running' AND concurrency_key IS NOT NULL;

CREATE TABLE dataset_status (
    brand_id        text,                             -- NULL = global
    dataset         text NOT NULL,
    last_success_at timestamptz,
    last_attempt_at timestamptz,
    last_status     text CHECK (last_status IN ('completed', 'failed')),
    last_error      text,
    last_run_id     bigint,
    updated_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX dataset_status_key ON dataset_status ((coalesce(brand_id, '')), dataset);

CREATE TABLE dataset_thresholds (
    brand_id            text,                         -- NULL = every brand without its own
    dataset             text NOT NULL,
    warn_after_seconds  double precision NOT NULL,
    error_after_seconds double precision NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE UNIQUE INDEX dataset_thresholds_key
    ON dataset_thresholds ((coalesce(brand_id, '')), dataset);

CREATE TABLE workers (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    version      text NOT NULL
);


-- == schema ===================================================================================

-- PL/pgSQL so that creating it does not need the migrations table, which `migrate` owns.
CREATE FUNCTION pipectl_schema_version() RETURNS integer
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT max(version) FROM pipectl_schema_migrations);
END
$$;

CREATE FUNCTION pipectl_db_now() RETURNS timestamptz
LANGUAGE sql VOLATILE AS $$
    SELECT clock_timestamp()
$$;


-- == jobs =====================================================================================

CREATE FUNCTION pipectl_insert_job(
    p_brand_id text,
    p_job_type text,
    p_name text,
    p_schedule_type text,
    p_cron_expression text,
    p_timezone text,
    p_next_run_at timestamptz,
    p_status text,
    p_parameters jsonb,
    p_max_retries integer,
    p_retry_base_seconds integer,
    p_retry_cap_seconds integer,
    p_timeout_seconds double precision,
    p_dedupe_key text,
    p_concurrency_key text,
    p_now timestamptz
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    job scheduled_jobs;
BEGIN
    INSERT INTO scheduled_jobs (brand_id, job_type, name, schedule_type, cron_expression,
        timezone, next_run_at, status, parameters, max_retries, retry_base_seconds,
        retry_cap_seconds, timeout_seconds, dedupe_key, concurrency_key, created_at, updated_at)
    VALUES (p_brand_id, p_job_type, p_name, p_schedule_type, p_cron_expression, p_timezone,
        p_next_run_at, p_status, p_parameters, p_max_retries, p_retry_base_seconds,
        p_retry_cap_seconds, p_timeout_seconds, p_dedupe_key, p_concurrency_key, p_now, p_now)
    RETURNING * INTO job;
    -- Wakes idle workers (delivered at commit); they poll anyway, this only saves the wait.
    IF job.status = 'active' THEN
        PERFORM pg_notify('pipectl_jobs', job.id::text);
    END IF;
    RETURN to_jsonb(job);
END
$$;

-- Returns {"job": …, "created": true|false}.
CREATE FUNCTION pipectl_enqueue(
    p_brand_id text,
    p_job_type text,
    p_name text,
    p_schedule_type text,
    p_cron_expression text,
    p_timezone text,
    p_next_run_at timestamptz,
    p_status text,
    p_parameters jsonb,
    p_max_retries integer,
    p_retry_base_seconds integer,
    p_retry_cap_seconds integer,
    p_timeout_seconds double precision,
    p_dedupe_key text,
    p_concurrency_key text,
    p_now timestamptz
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    existing jsonb;
BEGIN
    IF p_dedupe_key IS NOT NULL THEN
        -- Callers with the same key queue up here until the first one commits; the SELECT
        -- below then sees its job. (Lock namespace 1: dedupe keys.)
        PERFORM pg_advisory_xact_lock(1, hashtext(p_dedupe_key));
        SELECT to_jsonb(j) INTO existing FROM scheduled_jobs AS j
        WHERE j.dedupe_key = p_dedupe_key AND j.status = 'active'
        ORDER BY j.id
        LIMIT 1;
        IF existing IS NOT NULL THEN
            RETURN jsonb_build_object('job', existing, 'created', false);
        END IF;
    END IF;
    RETURN jsonb_build_object(
        'job',
        pipectl_insert_job(
            p_brand_id => p_brand_id,
            p_job_type => p_job_type,
            p_name => p_name,
            p_schedule_type => p_schedule_type,
            p_cron_expression => p_cron_expression,
            p_timezone => p_timezone,
            p_next_run_at => p_next_run_at,
            p_status => p_status,
            p_parameters => p_parameters,
            p_max_retries => p_max_retries,
            p_retry_base_seconds => p_retry_base_seconds,
            p_retry_cap_seconds => p_retry_cap_seconds,
            p_timeout_seconds => p_timeout_seconds,
            p_dedupe_key => p_dedupe_key,
            p_concurrency_key => p_concurrency_key,
            p_now => p_now
        ),
        'created', true
    );
END
$$;

CREATE FUNCTION pipectl_get_job(p_job_id bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(j) FROM scheduled_jobs AS j WHERE j.id = p_job_id
$$;

-- Reads are single-statement STABLE SQL functions so that the planner can inline them and plan
-- with the actual arguments. p_all_brands = false filters on p_brand_id, where NULL = global.
-- An empty p_statuses means no filter, as NULL does.
CREATE FUNCTION pipectl_list_jobs(
    p_all_brands boolean DEFAULT true,
    p_brand_id text DEFAULT NULL,
    p_job_type text DEFAULT NULL,
    p_statuses text[] DEFAULT NULL,
    p_in_backoff boolean DEFAULT false,
    p_limit integer DEFAULT NULL
) RETURNS SETOF jsonb
LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(j) FROM scheduled_jobs AS j
    WHERE (p_all_brands OR j.brand_id = p_brand_id OR (p_brand_id IS NULL AND j.brand_id IS NULL))
      AND (p_job_type IS NULL OR j.job_type = p_job_type)
      AND (coalesce(cardinality(p_statuses), 0) = 0 OR j.status = ANY (p_statuses))
      AND (NOT p_in_backoff
           OR (j.retry_count > 0 AND j.status IN ('active', 'running', 'paused')))
    ORDER BY j.id
    LIMIT p_limit
$$;

-- p_changes holds only keys from the editable fields (anything else is an error); keys it lacks
-- keep the job's value. Timestamps in it are ISO 8601 strings with an offset. With
-- p_only_if_status (non-empty), nothing changes unless the job's status is one of those.
-- Returns the job after the update, or NULL when no row matched.
CREATE FUNCTION pipectl_update_job(
    p_job_id bigint,
    p_changes jsonb,
    p_now timestamptz,
    p_only_if_status text[] DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    editable CONSTANT text[] := ARRAY['name', 'cron_expression', 'timezone', 'next_run_at',
        'status', 'parameters', 'max_retries', 'retry_count', 'timeout_seconds',
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
    SET (name, cron_expression, timezone, next_run_at, status, parameters, max_retries,
         retry_count, timeout_seconds, concurrency_key, last_error, updated_at)
      = (SELECT c.name, c.cron_expression, c.timezone, c.next_run_at, c.status, c.parameters,
                c.max_retries, c.retry_count, c.timeout_seconds, c.concurrency_key, c.last_error,
                p_now
         FROM jsonb_populate_record(j, p_changes) AS c)
    WHERE j.id = p_job_id
      AND (coalesce(cardinality(p_only_if_status), 0) = 0 OR j.status = ANY (p_only_if_status))
    RETURNING to_jsonb(j.*) INTO job;
    RETURN job;
END
$$;


-- == the worker's transitions =================================================================

CREATE FUNCTION pipectl_register_worker(
    p_id text,
    p_host text,
    p_pid integer,
    p_started_at timestamptz,
    p_last_seen_at timestamptz,
    p_version text
) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO workers (id, host, pid, started_at, last_seen_at, version)
    VALUES (p_id, p_host, p_pid, p_started_at, p_last_seen_at, p_version)
    ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
        started_at = excluded.started_at, last_seen_at = excluded.last_seen_at,
        version = excluded.version
$$;

-- Deletes worker rows last seen before the cutoff that hold no running run; returns how many.
CREATE FUNCTION pipectl_forget_workers(p_seen_before timestamptz) RETURNS integer
LANGUAGE sql AS $$
    WITH forgotten AS (
        DELETE FROM workers AS w
        WHERE w.last_seen_at < p_seen_before AND NOT EXISTS (
            SELECT 1 FROM scheduled_job_runs AS r
            WHERE r.status = 'running' AND r.worker_id = w.id)
        RETURNING 1
    )
    SELECT count(*)::integer FROM forgotten
$$;

-- Claims up to p_limit due jobs, oldest due first: each becomes `running` with a new `running`
-- run owned by p_worker_id. Returns {"run": …, "job": …} per claim.
--
-- One job per round: SKIP LOCKED passes over jobs other workers are claiming right now, and
-- LIMIT 1 keeps this worker from locking more rows than it takes. Concurrency keys are
-- guarded three ways: the query skips keys with a committed running run; a try-lock on the
-- key skips keys another claim is taking right now (waiting on it could deadlock two claims
-- that took each other's keys); and the partial unique index, through ON CONFLICT DO NOTHING,
-- refuses a key whose run committed after this statement's snapshot.
CREATE FUNCTION pipectl_claim_due(p_worker_id text, p_now timestamptz, p_limit integer)
RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
DECLARE
    due scheduled_jobs;
    claimed_run scheduled_job_runs;
    claimed_job scheduled_jobs;
    claimed integer := 0;
    busy_keys text[] := '{}';
BEGIN
    WHILE claimed < p_limit LOOP
        SELECT * INTO due FROM scheduled_jobs AS j
        WHERE j.status = 'active' AND j.next_run_at <= p_now
          AND (j.concurrency_key IS NULL
               OR (j.concurrency_key <> ALL (busy_keys) AND NOT EXISTS (
                    SELECT 1 FROM scheduled_job_runs AS r
                    WHERE r.status = 'running' AND r.concurrency_key = j.concurrency_key)))
        ORDER BY j.next_run_at, j.id
        LIMIT 1
        FOR UPDATE SKIP LOCKED;
        EXIT WHEN NOT FOUND;

        -- Lock namespace 2: concurrency keys. Held until commit, like the run row.
        IF due.concurrency_key IS NOT NULL
           AND NOT pg_try_advisory_xact_lock(2, hashtext(due.concurrency_key)) THEN
            busy_keys := busy_keys || due.concurrency_key;
            CONTINUE;
        END IF;

        INSERT INTO scheduled_job_runs (job_id, attempt, status, started_at, heartbeat_at,
            worker_id, lease_token, concurrency_key)
        VALUES (due.id, due.retry_count + 1, 'running', p_now, p_now, p_worker_id,
            replace(gen_random_uuid()::text, '-', ''), due.concurrency_key)
        ON CONFLICT (concurrency_key) WHERE status = 'running' AND concurrency_key IS NOT NULL
            DO NOTHING
        RETURNING * INTO claimed_run;
        IF NOT FOUND THEN
            busy_keys := busy_keys || due.concurrency_key;
            CONTINUE;
        END IF;

        UPDATE scheduled_jobs
        SET status = 'running', last_run_id = claimed_run.id, updated_at = p_now
        WHERE id = due.id
        RETURNING * INTO claimed_job;
        claimed := claimed + 1;
        RETURN NEXT jsonb_build_object('run', to_jsonb(claimed_run), 'job', to_jsonb(claimed_job));
    END LOOP;
END
$$;

-- Renews the worker and its runs (p_run_ids[i] under p_lease_tokens[i]); returns the ids of the
-- runs it no longer owns, in the order given.
CREATE FUNCTION pipectl_heartbeat(
    p_worker_id text,
    p_run_ids bigint[],
    p_lease_tokens text[],
    p_now timestamptz
) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE workers SET last_seen_at = p_now WHERE id = p_worker_id;
    RETURN QUERY
    WITH lease AS (
        SELECT * FROM unnest(p_run_ids, p_lease_tokens) WITH ORDINALITY
            AS l (run_id, lease_token, position)
    ), renewed AS (
        UPDATE scheduled_job_runs AS r SET heartbeat_at = p_now
        FROM lease
        WHERE r.id = lease.run_id AND r.lease_token = lease.lease_token
          AND r.status = 'running'
        RETURNING r.id
    )
    SELECT lease.run_id FROM lease
    WHERE lease.run_id NOT IN (SELECT id FROM renewed)
    ORDER BY lease.position;
END
$$;

-- The job's next state and the run's datasets, once the caller has closed the run. Shared by
-- pipectl_finish_run and pipectl_fail_stale_run; not meant to be called on its own.
-- p_datasets: [{"brand_id", "dataset", "succeeded", "error"}, …].
CREATE FUNCTION pipectl_apply_run_result(
    p_run_id bigint,
    p_job_id bigint,
    p_finished_at timestamptz,
    p_job_status text,
    p_next_run_at timestamptz,
    p_retry_count integer,
    p_last_error text,
    p_datasets jsonb
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    outcome record;
BEGIN
    -- The status applies only while the job is still running: an operator who paused or
    -- archived it mid-run keeps their choice.
    UPDATE scheduled_jobs
    SET status = CASE WHEN status = 'running' THEN p_job_status ELSE status END,
        next_run_at = p_next_run_at, retry_count = p_retry_count, last_error = p_last_error,
        updated_at = p_finished_at
    WHERE id = p_job_id;

    -- One row at a time, in key order: two runs sharing datasets lock them in the same order.
    FOR outcome IN
        SELECT o.* FROM ROWS FROM (jsonb_to_recordset(p_datasets)
                AS (brand_id text, dataset text, succeeded boolean, error text))
            WITH ORDINALITY AS o (brand_id, dataset, succeeded, error, position)
        ORDER BY coalesce(o.brand_id, ''), o.dataset, o.position
    LOOP
        -- Timestamps only move forward: a run that finishes late cannot make data look older.
        -- (greatest() ignores NULLs.)
        INSERT INTO dataset_status AS d (brand_id, dataset, last_success_at, last_attempt_at,
            last_status, last_error, last_run_id, updated_at)
        VALUES (outcome.brand_id, outcome.dataset,
            CASE WHEN outcome.succeeded THEN p_finished_at END, p_finished_at,
            CASE WHEN outcome.succeeded THEN 'completed' ELSE 'failed' END,
            CASE WHEN outcome.succeeded THEN NULL ELSE outcome.error END,
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
            updated_at = excluded.updated_at;
    END LOOP;
END
$$;

-- Records a run's outcome, its job's next state and its datasets, only while the run is still
-- running under this lease. False when the lease was lost.
CREATE FUNCTION pipectl_finish_run(
    p_run_id bigint,
    p_lease_token text,
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
    UPDATE scheduled_job_runs
    SET status = p_status, finished_at = p_finished_at, error_message = p_error_message,
        logs = p_logs, steps = p_steps
    WHERE id = p_run_id AND status = 'running' AND lease_token = p_lease_token
    RETURNING job_id INTO closed_job_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pipectl_apply_run_result(p_run_id, closed_job_id, p_finished_at, p_job_status,
        p_next_run_at, p_retry_count, p_last_error, p_datasets);
    RETURN true;
END
$$;

-- Like pipectl_finish_run for a stuck run: the guard `status = 'running' AND heartbeat_at <
-- cutoff` sits in the same UPDATE, so a run that finished or heartbeated meanwhile is left
-- alone (false).
CREATE FUNCTION pipectl_fail_stale_run(
    p_run_id bigint,
    p_heartbeat_before timestamptz,
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
    UPDATE scheduled_job_runs
    SET status = p_status, finished_at = p_finished_at, error_message = p_error_message,
        logs = p_logs, steps = p_steps
    WHERE id = p_run_id AND status = 'running' AND heartbeat_at < p_heartbeat_before
    RETURNING job_id INTO closed_job_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pipectl_apply_run_result(p_run_id, closed_job_id, p_finished_at, p_job_status,
        p_next_run_at, p_retry_count, p_last_error, p_datasets);
    RETURN true;
END
$$;

-- Gives back a claimed run that never started (shutdown): deletes it and puts its job back to
-- `active` with the same next_run_at.
CREATE FUNCTION pipectl_release_run(p_run_id bigint, p_lease_token text, p_now timestamptz)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    released_job_id bigint;
BEGIN
    DELETE FROM scheduled_job_runs
    WHERE id = p_run_id AND lease_token = p_lease_token AND status = 'running'
    RETURNING job_id INTO released_job_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE scheduled_jobs
    SET status = CASE WHEN status = 'running' THEN 'active' ELSE status END,
        last_run_id = (SELECT max(id) FROM scheduled_job_runs WHERE job_id = released_job_id),
        updated_at = p_now
    WHERE id = released_job_id;
    RETURN true;
END
$$;

-- Running runs whose heartbeat is older than the cutoff, as {"run": …, "job": …}.
CREATE FUNCTION pipectl_stale_runs(p_heartbeat_before timestamptz) RETURNS SETOF jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('run', to_jsonb(r), 'job', to_jsonb(j))
    FROM scheduled_job_runs AS r
    JOIN scheduled_jobs AS j ON j.id = r.job_id
    WHERE r.status = 'running' AND r.heartbeat_at < p_heartbeat_before
    ORDER BY r.id
$$;


-- == reads ====================================================================================

-- Newest first.
CREATE FUNCTION pipectl_list_runs(
    p_job_id bigint DEFAULT NULL,
    p_all_brands boolean DEFAULT true,
    p_brand_id text DEFAULT NULL,
    p_status text DEFAULT NULL,
    p_limit integer DEFAULT 50
) RETURNS SETOF jsonb
LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(r) FROM scheduled_job_runs AS r
    WHERE (p_job_id IS NULL OR r.job_id = p_job_id)
      AND (p_status IS NULL OR r.status = p_status)
      AND (p_all_brands OR EXISTS (
            SELECT 1 FROM scheduled_jobs AS j
            WHERE j.id = r.job_id
              AND (j.brand_id = p_brand_id OR (p_brand_id IS NULL AND j.brand_id IS NULL))))
    ORDER BY r.id DESC
    LIMIT p_limit
$$;

CREATE FUNCTION pipectl_get_run(p_run_id bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(r) FROM scheduled_job_runs AS r WHERE r.id = p_run_id
$$;

CREATE FUNCTION pipectl_runs_by_id(p_run_ids bigint[]) RETURNS SETOF jsonb
LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(r) FROM scheduled_job_runs AS r WHERE r.id = ANY (p_run_ids) ORDER BY r.id
$$;

-- Ordered as SQLite orders them (bytewise, NULLs first), so every backend lists alike.
CREATE FUNCTION pipectl_dataset_statuses(
    p_all_brands boolean DEFAULT true,
    p_brand_id text DEFAULT NULL
) RETURNS SETOF jsonb
LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(d) FROM dataset_status AS d
    WHERE p_all_brands OR d.brand_id = p_brand_id OR (p_brand_id IS NULL AND d.brand_id IS NULL)
    ORDER BY coalesce(d.brand_id, '') COLLATE "C", d.dataset COLLATE "C"
$$;

CREATE FUNCTION pipectl_dataset_status(p_dataset text, p_brand_id text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(d) FROM dataset_status AS d
    WHERE coalesce(d.brand_id, '') = coalesce(p_brand_id, '') AND d.dataset = p_dataset
$$;

CREATE FUNCTION pipectl_thresholds() RETURNS SETOF jsonb
LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(t) FROM dataset_thresholds AS t
    ORDER BY t.dataset COLLATE "C", t.brand_id COLLATE "C" NULLS FIRST
$$;

CREATE FUNCTION pipectl_set_threshold(
    p_brand_id text,
    p_dataset text,
    p_warn_after_seconds double precision,
    p_error_after_seconds double precision,
    p_now timestamptz
) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO dataset_thresholds (brand_id, dataset, warn_after_seconds, error_after_seconds,
        updated_at)
    VALUES (p_brand_id, p_dataset, p_warn_after_seconds, p_error_after_seconds, p_now)
    ON CONFLICT ((coalesce(brand_id, '')), dataset) DO UPDATE SET
        warn_after_seconds = excluded.warn_after_seconds,
        error_after_seconds = excluded.error_after_seconds,
        updated_at = excluded.updated_at
$$;

CREATE FUNCTION pipectl_workers() RETURNS SETOF jsonb
LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(w) FROM workers AS w ORDER BY w.last_seen_at DESC
$$;
