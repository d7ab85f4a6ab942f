-- pipectl schema: retired datasets and brands, and the readiness gate as a read-only function.

-- A retired (brand, dataset) leaves the gate and `status`; its row and history stay.
ALTER TABLE dataset_status ADD COLUMN retired_at timestamptz;

-- A retired brand: which jobs its retirement archived (with the status each had) and which
-- datasets it retired, so that `brands restore` undoes exactly that.
CREATE TABLE brand_retirements (
    brand_id   text PRIMARY KEY,
    retired_at timestamptz NOT NULL,
    jobs       jsonb NOT NULL,   -- [{"id": 3, "status": "active"}, …]
    datasets   jsonb NOT NULL    -- ["ads_performance", …]
);
-- The grants of migration 0002: row-level security, no policy, the service role only.
ALTER TABLE brand_retirements ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON brand_retirements FROM PUBLIC;
DO $$
DECLARE
    outsider text;
BEGIN
    FOREACH outsider IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        CONTINUE WHEN NOT EXISTS (SELECT FROM pg_roles WHERE rolname = outsider);
        EXECUTE format('REVOKE ALL ON brand_retirements FROM %I', outsider);
    END LOOP;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON brand_retirements TO service_role;
    END IF;
END
$$;

-- Every brand any job (archived ones included), dataset row or threshold has ever named.
CREATE FUNCTION pipectl_brand_ids() RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    SELECT b.brand_id FROM (
        SELECT brand_id FROM scheduled_jobs WHERE brand_id IS NOT NULL
        UNION SELECT brand_id FROM dataset_status WHERE brand_id IS NOT NULL
        UNION SELECT brand_id FROM dataset_thresholds WHERE brand_id IS NOT NULL) AS b
    ORDER BY b.brand_id COLLATE "C"
$$;

-- Retire (p_retired_at set) or restore (NULL) the pairs in p_keys ([{"brand_id", "dataset"}]).
-- Retiring a pair without a row inserts one without history; restoring deletes such a row and
-- clears retired_at on the others. Returns how many pairs changed.
CREATE FUNCTION pipectl_set_datasets_retired(
    p_keys jsonb,
    p_retired_at timestamptz,
    p_now timestamptz
) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    changed integer := 0;
    n integer;
BEGIN
    IF p_retired_at IS NOT NULL THEN
        INSERT INTO dataset_status AS d (brand_id, dataset, updated_at, retired_at)
        SELECT k.brand_id, k.dataset, p_now, p_retired_at
        FROM jsonb_to_recordset(p_keys) AS k (brand_id text, dataset text)
        ON CONFLICT ((coalesce(brand_id, '')), dataset) DO UPDATE
            SET retired_at = excluded.retired_at
            WHERE d.retired_at IS NULL;
        GET DIAGNOSTICS changed = ROW_COUNT;
        RETURN changed;
    END IF;
    DELETE FROM dataset_status AS d
    USING jsonb_to_recordset(p_keys) AS k (brand_id text, dataset text)
    WHERE coalesce(d.brand_id, '') = coalesce(k.brand_id, '') AND d.dataset = k.dataset
      AND d.retired_at IS NOT NULL AND d.last_attempt_at IS NULL;
    GET DIAGNOSTICS changed = ROW_COUNT;
    UPDATE dataset_status AS d SET retired_at = NULL
    FROM jsonb_to_recordset(p_keys) AS k (brand_id text, dataset text)
    WHERE coalesce(d.brand_id, '') = coalesce(k.brand_id, '') AND d.dataset = k.dataset
      AND d.retired_at IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN changed + n;
END
$$;

CREATE FUNCTION pipectl_delete_threshold(p_dataset text, p_brand_id text) RETURNS boolean
LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM dataset_thresholds
        WHERE coalesce(brand_id, '') = coalesce(p_brand_id, '') AND dataset = p_dataset
        RETURNING 1)
    SELECT EXISTS (SELECT FROM gone)
$$;

-- In one transaction: archive every job of the brand that is not archived yet, retire the
-- given datasets of the brand, and record both. Returns the archived jobs; nothing (and no
-- change) when the brand is already retired.
CREATE FUNCTION pipectl_retire_brand(
    p_brand_id text,
    p_datasets text[],
    p_now timestamptz
) RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
DECLARE
    before jsonb;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('pipectl brand ' || p_brand_id, 0));
    IF EXISTS (SELECT FROM brand_retirements WHERE brand_id = p_brand_id) THEN
        RETURN;
    END IF;
    SELECT coalesce(jsonb_agg(jsonb_build_object('id', j.id, 'status', j.status) ORDER BY j.id),
                    '[]')
    INTO before
    FROM scheduled_jobs AS j WHERE j.brand_id = p_brand_id AND j.status <> 'archived';
    INSERT INTO brand_retirements (brand_id, retired_at, jobs, datasets)
    VALUES (p_brand_id, p_now, before, to_jsonb(coalesce(p_datasets, '{}')));
    PERFORM pipectl_set_datasets_retired(
        (SELECT coalesce(jsonb_agg(jsonb_build_object('brand_id', p_brand_id, 'dataset', d)),
                         '[]')
         FROM unnest(p_datasets) AS d),
        p_now, p_now);
    RETURN QUERY
    UPDATE scheduled_jobs AS j SET status = 'archived', updated_at = p_now
    WHERE j.id IN (SELECT (e ->> 'id')::bigint FROM jsonb_array_elements(before) AS e)
      AND j.status <> 'archived'
    RETURNING to_jsonb(j.*);
END
$$;

CREATE FUNCTION pipectl_brand_retirements() RETURNS SETOF jsonb
LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(r) FROM brand_retirements AS r ORDER BY r.brand_id COLLATE "C"
$$;

-- Undo a retirement in one transaction: the jobs in p_jobs ([{"id", "status", "next_run_at"}],
-- values the engine computed) that are still archived get those values, the retired datasets
-- come back, the record goes. False when the brand is not retired.
CREATE FUNCTION pipectl_restore_brand(
    p_brand_id text,
    p_jobs jsonb,
    p_now timestamptz
) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    retired brand_retirements;
BEGIN
    DELETE FROM brand_retirements WHERE brand_id = p_brand_id RETURNING * INTO retired;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE scheduled_jobs AS j SET status = k.status, next_run_at = k.next_run_at,
        updated_at = p_now
    FROM jsonb_to_recordset(p_jobs) AS k (id bigint, status text, next_run_at timestamptz)
    WHERE j.id = k.id AND j.brand_id = p_brand_id AND j.status = 'archived';
    PERFORM pipectl_set_datasets_retired(
        (SELECT coalesce(jsonb_agg(jsonb_build_object('brand_id', p_brand_id, 'dataset', d)),
                         '[]')
         FROM jsonb_array_elements_text(retired.datasets) AS d),
        NULL, p_now);
    RETURN true;
END
$$;

-- == the readiness gate for application code (Supabase: supabase.rpc('pipectl_gate', …)) ======

-- Does a job with these parameters, of brand p_job_brand (NULL: global), declare p_dataset for
-- p_for_brand (NULL: global)? The rule of freshness.dataset_declarations restated for one
-- dataset: `datasets` and each step's `datasets`, as a name or a list of names and
-- {"dataset", "brands"} objects; a global job's object entry counts for the brands it names.
CREATE FUNCTION pipectl_declares(
    p_parameters jsonb,
    p_dataset text,
    p_for_brand text,
    p_job_brand text
) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT EXISTS (
        SELECT FROM (
            SELECT p_parameters -> 'datasets' AS v
            UNION ALL
            SELECT s -> 'datasets'
            FROM jsonb_array_elements(CASE jsonb_typeof(p_parameters -> 'steps')
                                      WHEN 'array' THEN p_parameters -> 'steps'
                                      ELSE '[]' END) AS s
        ) AS declared,
        LATERAL jsonb_array_elements(CASE jsonb_typeof(declared.v)
                                     WHEN 'array' THEN declared.v
                                     WHEN 'string' THEN jsonb_build_array(declared.v)
                                     ELSE '[]' END) AS e
        WHERE CASE jsonb_typeof(e)
            WHEN 'string' THEN
                e #>> '{}' = p_dataset AND p_job_brand IS NOT DISTINCT FROM p_for_brand
            WHEN 'object' THEN
                e ->> 'dataset' = p_dataset AND (
                    (p_job_brand IS NOT DISTINCT FROM p_for_brand
                     AND (p_job_brand IS NOT NULL OR jsonb_typeof(e -> 'brands') IS NULL))
                    OR (p_job_brand IS NULL AND p_for_brand IS NOT NULL
                        AND jsonb_typeof(e -> 'brands') = 'array' AND e -> 'brands' ? p_for_brand))
            ELSE false
        END)
$$;

-- The gate for one brand (NULL: global) and the datasets a page shows, read-only:
--   {"ok": bool, "brand_id": …, "failures": [names], "datasets": [{"dataset", "state",
--    "last_success_at", "last_attempt_at", "last_attempt_failed", …}]}
-- state is never, fresh, warn or stale as in Python (freshness.classify), or "unknown" (nothing
-- declares the dataset for the brand) or "retired"; ok when every one is fresh or warn (only
-- fresh with p_strict). Thresholds: the brand's own, else the dataset's, else the defaults
-- given (pipectl's own defaults unless told). It runs with its owner's rights, so a role
-- granted EXECUTE (`pipectl db sql --grant-gate-to authenticated`) needs no access to the
-- tables; such a caller sees only states and timestamps: errors, thresholds, parameters and
-- logs are for the service role (and the owner) only.
DO $gate$
DECLARE
    home_name CONSTANT text := (SELECT n.nspname FROM pg_class AS c
                                JOIN pg_namespace AS n ON n.oid = c.relnamespace
                                WHERE c.oid = 'scheduled_jobs'::regclass);
BEGIN
    EXECUTE format($create$
CREATE FUNCTION pipectl_gate(
    p_brand_id text,
    p_datasets text[],
    p_strict boolean DEFAULT false,
    p_warn_after_seconds double precision DEFAULT 86400,
    p_error_after_seconds double precision DEFAULT 172800
) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = %I, pg_temp AS $body$
    WITH asked AS (
        SELECT DISTINCT name FROM unnest(p_datasets) AS name WHERE name IS NOT NULL
    ), facts AS (
        SELECT a.name, d.last_success_at, d.last_attempt_at, d.last_status, d.last_error,
               d.retired_at, d.dataset IS NOT NULL AS has_row,
               coalesce(own.warn_after_seconds, every.warn_after_seconds, p_warn_after_seconds)
                   AS warn_after_seconds,
               coalesce(own.error_after_seconds, every.error_after_seconds,
                        p_error_after_seconds) AS error_after_seconds,
               own.dataset IS NOT NULL AS has_own_threshold,
               EXISTS (SELECT FROM scheduled_jobs AS j
                       WHERE j.status IN ('active', 'running', 'paused')
                         AND (j.brand_id IS NOT DISTINCT FROM p_brand_id OR j.brand_id IS NULL)
                         AND pipectl_declares(j.parameters, a.name, p_brand_id, j.brand_id))
                   AS declared
        FROM asked AS a
        LEFT JOIN dataset_status AS d
            ON coalesce(d.brand_id, '') = coalesce(p_brand_id, '') AND d.dataset = a.name
        LEFT JOIN dataset_thresholds AS own
            ON own.brand_id = p_brand_id AND own.dataset = a.name
        LEFT JOIN dataset_thresholds AS every
            ON every.brand_id IS NULL AND every.dataset = a.name
    ), judged AS (
        SELECT f.*,
            CASE
                WHEN f.retired_at IS NOT NULL THEN 'retired'
                WHEN NOT (f.has_row OR f.declared OR f.has_own_threshold) THEN 'unknown'
                WHEN f.last_success_at IS NULL THEN 'never'
                WHEN now() - f.last_success_at <= make_interval(secs => f.warn_after_seconds)
                    THEN 'fresh'
                WHEN now() - f.last_success_at <= make_interval(secs => f.error_after_seconds)
                    THEN 'warn'
                ELSE 'stale'
            END AS state,
            coalesce(f.last_status = 'failed' AND f.last_attempt_at IS NOT NULL
                     AND (f.last_success_at IS NULL OR f.last_attempt_at > f.last_success_at),
                     false) AS last_attempt_failed
        FROM facts AS f
    ), shown AS (
        SELECT j.name, j.state,
            jsonb_build_object(
                'dataset', j.name,
                'state', j.state,
                'last_success_at', j.last_success_at,
                'last_attempt_at', j.last_attempt_at,
                'last_attempt_failed', j.last_attempt_failed)
            || CASE WHEN coalesce(current_setting('role', true), 'none')
                         IN ('none', 'service_role')
                    THEN jsonb_build_object(
                        'last_error', CASE WHEN j.last_attempt_failed THEN j.last_error END,
                        'warn_after_seconds', j.warn_after_seconds,
                        'error_after_seconds', j.error_after_seconds)
                    ELSE '{}' END AS doc
        FROM judged AS j
    )
    SELECT jsonb_build_object(
        'ok', NOT EXISTS (SELECT FROM shown AS s
                          WHERE s.state <> ALL (CASE WHEN p_strict THEN ARRAY['fresh']
                                                     ELSE ARRAY['fresh', 'warn'] END))
              AND EXISTS (SELECT FROM shown),
        'brand_id', p_brand_id,
        'failures', coalesce((SELECT jsonb_agg(s.name ORDER BY s.name) FROM shown AS s
                              WHERE s.state <> ALL (CASE WHEN p_strict THEN ARRAY['fresh']
                                                         ELSE ARRAY['fresh', 'warn'] END)),
                             '[]'),
        'datasets', coalesce((SELECT jsonb_agg(s.doc ORDER BY s.name) FROM shown AS s), '[]'))
$body$
$create$, home_name);
END
$gate$;

SELECT pipectl_restrict_functions();
