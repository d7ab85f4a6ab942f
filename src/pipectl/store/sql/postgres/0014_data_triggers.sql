-- pipectl schema: data-aware scheduling (triggers, holds, lineage).

-- A job may wait for data instead of a clock: schedule_type 'datasets'.
ALTER TABLE scheduled_jobs
    DROP CONSTRAINT scheduled_jobs_schedule_type_check,
    ADD CONSTRAINT scheduled_jobs_schedule_type_check
        CHECK (schedule_type IN ('recurring', 'one_time', 'datasets')),
    -- The job's inputs, as `jobs add --after/--requires-fresh` gave them:
    -- [{"kind": "after"|"fresh", "dataset": "orders", "scope": "brand"|"global"}, …]
    ADD COLUMN inputs jsonb NOT NULL DEFAULT '[]',
    -- How long a run may be held for stale inputs (NULL: the default, see triggers.py).
    ADD COLUMN max_hold_seconds double precision,
    -- A held job: when it fell due, and what it waits for (in words).
    ADD COLUMN held_since timestamptz,
    ADD COLUMN waiting_on text,
    -- When its triggers became ready: the job is due no later than this while active.
    ADD COLUMN triggered_at timestamptz;

-- A run of a global job fanned out to a brand carries that brand; every run records the input
-- successes that triggered it: [{"dataset", "brand_id", "run_id", "at", "successes"}, …].
ALTER TABLE scheduled_job_runs
    ADD COLUMN brand_id text,
    ADD COLUMN triggered_by jsonb NOT NULL DEFAULT '[]';

-- The inputs as rows, so that a dataset's success finds its consumers by index.
CREATE TABLE job_inputs (
    job_id  bigint NOT NULL REFERENCES scheduled_jobs (id) ON DELETE CASCADE,
    kind    text NOT NULL CHECK (kind IN ('after', 'fresh')),
    scope   text NOT NULL CHECK (scope IN ('brand', 'global')),
    dataset text NOT NULL,
    PRIMARY KEY (job_id, kind, scope, dataset)
);
CREATE INDEX job_inputs_dataset ON job_inputs (dataset);
ALTER TABLE job_inputs ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON job_inputs FROM PUBLIC;

-- Input successes not yet taken by a run: one row per (job, brand the run will carry, input),
-- several successes coalesced into it (the latest kept, `successes` counted).
CREATE TABLE dataset_triggers (
    job_id         bigint NOT NULL REFERENCES scheduled_jobs (id) ON DELETE CASCADE,
    brand_id       text,
    scope          text NOT NULL,
    dataset        text NOT NULL,
    input_brand_id text,
    run_id         bigint,
    succeeded_at   timestamptz NOT NULL,
    successes      integer NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX dataset_triggers_key
    ON dataset_triggers (job_id, (coalesce(brand_id, '')), scope, dataset);
ALTER TABLE dataset_triggers ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON dataset_triggers FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
        REVOKE ALL ON job_inputs, dataset_triggers FROM anon;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
        REVOKE ALL ON job_inputs, dataset_triggers FROM authenticated;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON job_inputs, dataset_triggers TO service_role;
    END IF;
END
$$;

-- When the job's pending successes make some brand's run ready (every `after` input has one),
-- the earliest such moment; NULL when none is ready. The rule of triggers.ready_at.
CREATE FUNCTION pipectl_ready_at(p_job_id bigint) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT min(ready.at) FROM (
        SELECT max(t.succeeded_at) AS at
        FROM dataset_triggers AS t
        WHERE t.job_id = p_job_id
        GROUP BY coalesce(t.brand_id, '')
        HAVING count(*) >= (SELECT count(*) FROM job_inputs AS i
                            WHERE i.job_id = p_job_id AND i.kind = 'after')
    ) AS ready
$$;

-- An active job whose triggers are ready is due no later than when they became ready, whatever
-- wrote it (a run's outcome, an operator's resume, the trigger itself).
CREATE FUNCTION pipectl_due_when_triggered() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'active' AND NEW.triggered_at IS NOT NULL
       AND (NEW.next_run_at IS NULL OR NEW.next_run_at > NEW.triggered_at) THEN
        NEW.next_run_at := NEW.triggered_at;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER scheduled_jobs_due_when_triggered
    BEFORE INSERT OR UPDATE ON scheduled_jobs
    FOR EACH ROW WHEN (NEW.triggered_at IS NOT NULL)
    EXECUTE FUNCTION pipectl_due_when_triggered();

-- A dataset's new success, in the transaction that records it: a trigger for each job waiting
-- `--after` it (for the brand its run will carry), and a held job that requires it fresh is
-- looked at again at once. A plain input is the job's own brand's dataset (a global job's: any
-- brand's, fanning out); a `global:` input is the global dataset.
CREATE FUNCTION pipectl_dataset_succeeded() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    consumer record;
BEGIN
    FOR consumer IN
        SELECT i.job_id, i.kind, i.scope,
            CASE WHEN i.scope = 'global' THEN j.brand_id ELSE NEW.brand_id END AS target
        FROM job_inputs AS i JOIN scheduled_jobs AS j ON j.id = i.job_id
        WHERE i.dataset = NEW.dataset AND j.status <> 'archived'
          AND CASE WHEN i.scope = 'global' THEN NEW.brand_id IS NULL
                   ELSE NEW.brand_id IS NOT NULL
                        AND (j.brand_id IS NULL OR j.brand_id = NEW.brand_id) END
        ORDER BY i.job_id
    LOOP
        IF consumer.kind = 'after' THEN
            INSERT INTO dataset_triggers AS t (job_id, brand_id, scope, dataset, input_brand_id,
                run_id, succeeded_at)
            VALUES (consumer.job_id, consumer.target, consumer.scope, NEW.dataset, NEW.brand_id,
                NEW.last_run_id, NEW.last_success_at)
            ON CONFLICT (job_id, (coalesce(brand_id, '')), scope, dataset) DO UPDATE
            SET run_id = excluded.run_id, succeeded_at = excluded.succeeded_at,
                successes = t.successes + 1;
            -- next_run_at is named so that the key-head trigger (0008) sees the move that
            -- scheduled_jobs_due_when_triggered makes.
            UPDATE scheduled_jobs
            SET triggered_at = pipectl_ready_at(id), next_run_at = next_run_at
            WHERE id = consumer.job_id;
        ELSE
            UPDATE scheduled_jobs SET next_run_at = NEW.last_success_at
            WHERE id = consumer.job_id AND status = 'active' AND held_since IS NOT NULL
              AND next_run_at > NEW.last_success_at;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
CREATE TRIGGER dataset_status_succeeded_insert
    AFTER INSERT ON dataset_status
    FOR EACH ROW WHEN (NEW.last_success_at IS NOT NULL)
    EXECUTE FUNCTION pipectl_dataset_succeeded();
CREATE TRIGGER dataset_status_succeeded_update
    AFTER UPDATE OF last_success_at ON dataset_status
    FOR EACH ROW WHEN (NEW.last_success_at IS DISTINCT FROM OLD.last_success_at)
    EXECUTE FUNCTION pipectl_dataset_succeeded();

-- A job's inputs and max hold, replaced (`jobs add/edit --after/--requires-fresh`). p_inputs as
-- the inputs column. Pending triggers of inputs no longer listed go. Returns the job.
CREATE FUNCTION pipectl_set_job_inputs(
    p_job_id bigint,
    p_inputs jsonb,
    p_max_hold_seconds double precision,
    p_now timestamptz
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    job jsonb;
BEGIN
    DELETE FROM job_inputs WHERE job_id = p_job_id;
    INSERT INTO job_inputs (job_id, kind, scope, dataset)
    SELECT DISTINCT p_job_id, i.kind, i.scope, i.dataset
    FROM jsonb_to_recordset(p_inputs) AS i (kind text, scope text, dataset text);
    DELETE FROM dataset_triggers AS t
    WHERE t.job_id = p_job_id AND NOT EXISTS (
        SELECT FROM job_inputs AS i WHERE i.job_id = p_job_id AND i.kind = 'after'
          AND i.scope = t.scope AND i.dataset = t.dataset);
    UPDATE scheduled_jobs AS j
    SET inputs = p_inputs, max_hold_seconds = p_max_hold_seconds, next_run_at = j.next_run_at,
        triggered_at = pipectl_ready_at(j.id), updated_at = p_now, revision = j.revision + 1
    WHERE j.id = p_job_id
    RETURNING to_jsonb(j.*) INTO job;
    RETURN job;
END
$$;

-- Claimed runs of jobs with inputs start: each takes its brand's pending triggers (p_pick: the
-- brand whose triggers were ready first, else p_brand_id), records them (after p_carried, what
-- a retried run carries over) and the brand on the run, and ends the job's hold.
-- p_starts: [{"run_id", "lease_token", "pick", "brand_id", "carried"}, …]. Returns the runs.
CREATE FUNCTION pipectl_start_runs(p_starts jsonb) RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
DECLARE
    start record;
    claimed record;
    target text;
    taken jsonb;
    run jsonb;
BEGIN
    FOR start IN
        SELECT * FROM jsonb_to_recordset(p_starts)
            AS s (run_id bigint, lease_token text, pick boolean, brand_id text, carried jsonb)
        ORDER BY s.run_id
    LOOP
        SELECT r.id, r.job_id INTO claimed FROM scheduled_job_runs AS r
        WHERE r.id = start.run_id AND r.status = 'running' AND r.lease_token = start.lease_token;
        CONTINUE WHEN NOT FOUND;
        PERFORM FROM scheduled_jobs WHERE id = claimed.job_id FOR UPDATE;
        target := start.brand_id;
        IF start.pick THEN
            SELECT t.brand_id INTO target FROM dataset_triggers AS t
            WHERE t.job_id = claimed.job_id
            GROUP BY t.brand_id
            HAVING count(*) >= (SELECT count(*) FROM job_inputs AS i
                                WHERE i.job_id = claimed.job_id AND i.kind = 'after')
            ORDER BY max(t.succeeded_at), t.brand_id
            LIMIT 1;
            IF NOT FOUND THEN
                target := start.brand_id;
            END IF;
        END IF;
        WITH gone AS (
            DELETE FROM dataset_triggers AS t
            WHERE t.job_id = claimed.job_id AND t.brand_id IS NOT DISTINCT FROM target
            RETURNING t.*
        )
        SELECT coalesce(jsonb_agg(jsonb_build_object('dataset', CASE WHEN g.scope = 'global'
                    THEN 'global:' || g.dataset ELSE g.dataset END,
                'brand_id', g.input_brand_id, 'run_id', g.run_id, 'at', g.succeeded_at,
                'successes', g.successes) ORDER BY g.dataset), '[]')
        INTO taken FROM gone AS g;
        UPDATE scheduled_jobs AS j
        SET held_since = NULL, waiting_on = NULL, triggered_at = pipectl_ready_at(j.id)
        WHERE j.id = claimed.job_id;
        UPDATE scheduled_job_runs AS r
        SET brand_id = target, triggered_by = coalesce(start.carried, '[]') || taken
        WHERE r.id = claimed.id
        RETURNING to_jsonb(r.*) INTO run;
        RETURN NEXT run;
    END LOOP;
END
$$;

-- Claimed runs held back by stale inputs: each run is given back (deleted) and its job, active
-- again, is looked at next at p_holds' next_run_at, keeping when it fell due (held_since) and
-- saying what it waits on. Returns how many were held.
-- p_holds: [{"run_id", "lease_token", "next_run_at", "held_since", "waiting_on"}, …]
CREATE FUNCTION pipectl_hold_runs(p_holds jsonb, p_now timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    hold record;
    released bigint;
    held integer := 0;
BEGIN
    FOR hold IN
        SELECT * FROM jsonb_to_recordset(p_holds) AS h (run_id bigint, lease_token text,
            next_run_at timestamptz, held_since timestamptz, waiting_on text)
        ORDER BY h.run_id
    LOOP
        DELETE FROM scheduled_job_runs AS r
        WHERE r.id = hold.run_id AND r.lease_token = hold.lease_token AND r.status = 'running'
        RETURNING r.job_id INTO released;
        CONTINUE WHEN NOT FOUND;
        UPDATE scheduled_jobs AS j
        SET status = CASE WHEN j.status = 'running' THEN 'active' ELSE j.status END,
            next_run_at = hold.next_run_at, held_since = hold.held_since,
            waiting_on = hold.waiting_on, updated_at = p_now,
            last_run_id = (SELECT max(r.id) FROM scheduled_job_runs AS r WHERE r.job_id = j.id)
        WHERE j.id = released;
        held := held + 1;
    END LOOP;
    RETURN held;
END
$$;

SELECT pipectl_restrict_functions();
