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

SELECT pipectl_restrict_functions();
