-- pipectl schema v1 for SQLite. Timestamps are UTC ISO 8601 text in one fixed format
-- (YYYY-MM-DDTHH:MM:SS.ffffff+00:00) so that text order is time order.

CREATE TABLE scheduled_jobs (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    brand_id           TEXT,                          -- NULL = global (cross-brand)
    job_type           TEXT NOT NULL,
    name               TEXT NOT NULL,
    schedule_type      TEXT NOT NULL CHECK (schedule_type IN ('recurring', 'one_time')),
    cron_expression    TEXT,
    timezone           TEXT NOT NULL DEFAULT 'UTC',
    next_run_at        TEXT,
    status             TEXT NOT NULL
        CHECK (status IN ('active', 'paused', 'running', 'completed', 'failed', 'archived')),
    parameters         TEXT NOT NULL DEFAULT '{}',
    max_retries        INTEGER NOT NULL,
    retry_count        INTEGER NOT NULL DEFAULT 0,   -- consecutive failures
    retry_base_seconds INTEGER NOT NULL,
    retry_cap_seconds  INTEGER NOT NULL,
    last_error         TEXT,
    timeout_seconds    REAL,
    dedupe_key         TEXT,
    concurrency_key    TEXT,
    last_run_id        INTEGER,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
-- The claim reads this index in due order and stops as soon as it has enough.
CREATE INDEX scheduled_jobs_due ON scheduled_jobs (next_run_at, id) WHERE status = 'active';
CREATE INDEX scheduled_jobs_dedupe ON scheduled_jobs (dedupe_key)
    WHERE status = 'active' AND dedupe_key IS NOT NULL;
CREATE INDEX scheduled_jobs_brand ON scheduled_jobs (brand_id, id);

CREATE TABLE scheduled_job_runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          INTEGER NOT NULL REFERENCES scheduled_jobs (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    heartbeat_at    TEXT,
    worker_id       TEXT,
    lease_token     TEXT NOT NULL,
    concurrency_key TEXT,
    error_message   TEXT,
    logs            TEXT NOT NULL DEFAULT '',
    steps           TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX scheduled_job_runs_job ON scheduled_job_runs (job_id, id);
CREATE INDEX scheduled_job_runs_running ON scheduled_job_runs (heartbeat_at) WHERE status = 'running';
-- At most one running run per concurrency key: the run row is the lock.
CREATE UNIQUE INDEX scheduled_job_runs_concurrency ON scheduled_job_runs (concurrency_key)
    WHERE status = 'running' AND concurrency_key IS NOT NULL;

CREATE TABLE dataset_status (
    brand_id        TEXT,                             -- NULL = global
    dataset         TEXT NOT NULL,
    last_success_at TEXT,
    last_attempt_at TEXT,
    last_status     TEXT CHECK (last_status IN ('completed', 'failed')),
    last_error      TEXT,
    last_run_id     INTEGER,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX dataset_status_key ON dataset_status (coalesce(brand_id, ''), dataset);

CREATE TABLE dataset_thresholds (
    brand_id            TEXT,                         -- NULL = every brand without its own
    dataset             TEXT NOT NULL,
    warn_after_seconds  REAL NOT NULL,
    error_after_seconds REAL NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE UNIQUE INDEX dataset_thresholds_key ON dataset_thresholds (coalesce(brand_id, ''), dataset);

CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    version      TEXT NOT NULL
);
