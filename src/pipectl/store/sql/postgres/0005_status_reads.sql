-- pipectl schema v5: `status` reads what it shows, however long the history.

-- The jobs `status` shows are the live ones: a few per brand, however many archived one-time
-- jobs (manual syncs) pile up beside them. Every brand's live jobs, or one brand's, are read
-- from this index; the planner proves that a status filter without 'archived' implies it.
CREATE INDEX scheduled_jobs_live ON scheduled_jobs (brand_id, id) WHERE status <> 'archived';

-- One brand's datasets (or the global ones) as a range of the unique index dataset_status_key,
-- through its own expression, instead of a scan of every brand's.
CREATE OR REPLACE FUNCTION pipectl_dataset_statuses(
    p_all_brands boolean DEFAULT true,
    p_brand_id text DEFAULT NULL
) RETURNS SETOF jsonb
LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(d) FROM dataset_status AS d
    WHERE p_all_brands OR coalesce(d.brand_id, '') = coalesce(p_brand_id, '')
    ORDER BY coalesce(d.brand_id, '') COLLATE "C", d.dataset COLLATE "C"
$$;
