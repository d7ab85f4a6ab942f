-- pipectl_brand_ids() reads one index entry per brand instead of every job and dataset row: a
-- skip scan (a recursive CTE that asks each index for the next brand after the last one) over
-- scheduled_jobs_brand and dataset_status_key. `status --brand B` and every command that checks
-- a brand name call it; with 10,000 brands it read 200,000 jobs and 100,000 dataset rows.
CREATE OR REPLACE FUNCTION pipectl_brand_ids() RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE
    job_brands (brand_id) AS (
        (SELECT j.brand_id FROM scheduled_jobs AS j
         WHERE j.brand_id IS NOT NULL ORDER BY j.brand_id LIMIT 1)
        UNION ALL
        SELECT (SELECT j.brand_id FROM scheduled_jobs AS j
                WHERE j.brand_id > b.brand_id ORDER BY j.brand_id LIMIT 1)
        FROM job_brands AS b WHERE b.brand_id IS NOT NULL
    ),
    dataset_brands (brand_key) AS (
        (SELECT coalesce(d.brand_id, '') FROM dataset_status AS d
         WHERE coalesce(d.brand_id, '') > '' ORDER BY coalesce(d.brand_id, '') LIMIT 1)
        UNION ALL
        SELECT (SELECT coalesce(d.brand_id, '') FROM dataset_status AS d
                WHERE coalesce(d.brand_id, '') > b.brand_key
                ORDER BY coalesce(d.brand_id, '') LIMIT 1)
        FROM dataset_brands AS b WHERE b.brand_key IS NOT NULL
    )
    SELECT x.brand_id FROM (
        SELECT brand_id FROM job_brands WHERE brand_id IS NOT NULL
        UNION SELECT brand_key FROM dataset_brands WHERE brand_key IS NOT NULL
        UNION SELECT brand_id FROM dataset_thresholds WHERE brand_id IS NOT NULL) AS x
    ORDER BY x.brand_id COLLATE "C"
$$;

SELECT pipectl_restrict_functions();
