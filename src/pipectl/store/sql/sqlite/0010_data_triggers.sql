-- pipectl schema (SQLite): data-aware scheduling (triggers, holds, lineage), as PostgreSQL's
-- 0014, whose comments say more.

-- schedule_type 'datasets': the CHECK loosened in sqlite_schema, as 0008 does for run status.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql, 'CHECK (schedule_type IN (''recurring'', ''one_time''))',
                  'CHECK (schedule_type IN (''recurring'', ''one_time'', ''datasets''))')
WHERE type = 'table' AND name = 'scheduled_jobs';
PRAGMA writable_schema = RESET;

ALTER TABLE scheduled_jobs ADD COLUMN inputs TEXT NOT NULL DEFAULT '[]';
ALTER TABLE scheduled_jobs ADD COLUMN max_hold_seconds REAL;
ALTER TABLE scheduled_jobs ADD COLUMN held_since TEXT;
ALTER TABLE scheduled_jobs ADD COLUMN waiting_on TEXT;
ALTER TABLE scheduled_jobs ADD COLUMN triggered_at TEXT;
ALTER TABLE scheduled_job_runs ADD COLUMN brand_id TEXT;
ALTER TABLE scheduled_job_runs ADD COLUMN triggered_by TEXT NOT NULL DEFAULT '[]';

CREATE TABLE job_inputs (
    job_id  INTEGER NOT NULL REFERENCES scheduled_jobs (id) ON DELETE CASCADE,
    kind    TEXT NOT NULL CHECK (kind IN ('after', 'fresh')),
    scope   TEXT NOT NULL CHECK (scope IN ('brand', 'global')),
    dataset TEXT NOT NULL,
    PRIMARY KEY (job_id, kind, scope, dataset)
);
CREATE INDEX job_inputs_dataset ON job_inputs (dataset);

CREATE TABLE dataset_triggers (
    job_id         INTEGER NOT NULL REFERENCES scheduled_jobs (id) ON DELETE CASCADE,
    brand_id       TEXT,
    scope          TEXT NOT NULL,
    dataset        TEXT NOT NULL,
    input_brand_id TEXT,
    run_id         INTEGER,
    succeeded_at   TEXT NOT NULL,
    successes      INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX dataset_triggers_key
    ON dataset_triggers (job_id, coalesce(brand_id, ''), scope, dataset);

-- An active job whose triggers are ready is due no later than when they became ready.
CREATE TRIGGER scheduled_jobs_due_when_triggered
AFTER UPDATE OF status, next_run_at, triggered_at ON scheduled_jobs
WHEN NEW.status = 'active' AND NEW.triggered_at IS NOT NULL
    AND (NEW.next_run_at IS NULL OR NEW.next_run_at > NEW.triggered_at)
BEGIN
    UPDATE scheduled_jobs SET next_run_at = NEW.triggered_at WHERE id = NEW.id;
END;

-- A dataset's new success, in the transaction that records it (see PostgreSQL's 0014): the two
-- triggers on dataset_status hand it to the one on dataset_successes, which does the work and
-- leaves the table empty.
CREATE TABLE dataset_successes (
    brand_id TEXT,
    dataset  TEXT NOT NULL,
    run_id   INTEGER,
    at       TEXT NOT NULL
);

CREATE TRIGGER dataset_successes_trigger AFTER INSERT ON dataset_successes
BEGIN
    INSERT INTO dataset_triggers (job_id, brand_id, scope, dataset, input_brand_id, run_id,
        succeeded_at)
    SELECT i.job_id, CASE WHEN i.scope = 'global' THEN j.brand_id ELSE NEW.brand_id END,
        i.scope, NEW.dataset, NEW.brand_id, NEW.run_id, NEW.at
    FROM job_inputs AS i JOIN scheduled_jobs AS j ON j.id = i.job_id
    WHERE i.dataset = NEW.dataset AND i.kind = 'after' AND j.status <> 'archived'
      AND CASE WHEN i.scope = 'global' THEN NEW.brand_id IS NULL
               ELSE NEW.brand_id IS NOT NULL
                    AND (j.brand_id IS NULL OR j.brand_id = NEW.brand_id) END
    ON CONFLICT (job_id, coalesce(brand_id, ''), scope, dataset) DO UPDATE
    SET run_id = excluded.run_id, succeeded_at = excluded.succeeded_at,
        successes = successes + 1;
    UPDATE scheduled_jobs SET triggered_at = (
        SELECT min(ready.at) FROM (
            SELECT max(t.succeeded_at) AS at FROM dataset_triggers AS t
            WHERE t.job_id = scheduled_jobs.id GROUP BY coalesce(t.brand_id, '')
            HAVING count(*) >= (SELECT count(*) FROM job_inputs AS c
                                WHERE c.job_id = scheduled_jobs.id AND c.kind = 'after')
        ) AS ready)
    WHERE id IN (SELECT i.job_id FROM job_inputs AS i
                 WHERE i.dataset = NEW.dataset AND i.kind = 'after');
    UPDATE scheduled_jobs SET next_run_at = NEW.at
    WHERE status = 'active' AND held_since IS NOT NULL AND next_run_at > NEW.at
      AND id IN (SELECT i.job_id FROM job_inputs AS i
                 WHERE i.dataset = NEW.dataset AND i.kind = 'fresh');
    DELETE FROM dataset_successes WHERE rowid = NEW.rowid;
END;

CREATE TRIGGER dataset_status_succeeded_insert AFTER INSERT ON dataset_status
WHEN NEW.last_success_at IS NOT NULL
BEGIN
    INSERT INTO dataset_successes (brand_id, dataset, run_id, at)
    VALUES (NEW.brand_id, NEW.dataset, NEW.last_run_id, NEW.last_success_at);
END;

CREATE TRIGGER dataset_status_succeeded_update AFTER UPDATE OF last_success_at ON dataset_status
WHEN NEW.last_success_at IS NOT NULL AND NEW.last_success_at IS NOT OLD.last_success_at
BEGIN
    INSERT INTO dataset_successes (brand_id, dataset, run_id, at)
    VALUES (NEW.brand_id, NEW.dataset, NEW.last_run_id, NEW.last_success_at);
END;
