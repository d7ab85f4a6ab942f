-- pipectl schema v3 for SQLite: `status` reads what it shows, however long the history.

-- The jobs `status` shows are the live ones: a few per brand, however many archived one-time
-- jobs (manual syncs) pile up beside them. SQLite uses a partial index only when the query
-- repeats its condition, so list_jobs adds `status <> 'archived'` when archived jobs are not
-- asked for.
CREATE INDEX scheduled_jobs_live ON scheduled_jobs (brand_id, id) WHERE status <> 'archived';
