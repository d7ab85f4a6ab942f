-- The SQLite store's statements, each under the name of the PostgreSQL function it stands for
-- (`-- name: claim_due` beside pipectl_claim_due), with a suffix where one function takes
-- several statements here. Loaded once at import (pipectl.store.migrations.load_queries).
--
-- A `{field}` naming a query of this file is that query, filled in at load; the others are
-- filled in by Python with placeholders or a fragment of this file, never with a value:
-- `{rows}` a `(?, …), (?, …)` list for a batch, `{marks}` a `?, ?` list, `{guard}` lease_guard
-- or is_stuck, `{assignments}` a `, column = :column` list. Timestamps are text in one form (UTC, microseconds, '+00:00'), so
-- they compare in text order.

-- name: db_now
SELECT strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now');

-- name: insert_job
INSERT INTO scheduled_jobs (brand_id, job_type, name, schedule_type, cron_expression,
    timezone, next_run_at, status, parameters, max_retries, retry_base_seconds,
    retry_cap_seconds, timeout_seconds, dedupe_key, concurrency_key, created_at,
    updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING *;

-- name: enqueue
-- The active job already queued under this dedupe key, if any.
SELECT * FROM scheduled_jobs WHERE dedupe_key = ? AND status = 'active' ORDER BY id LIMIT 1;

-- name: get_job
SELECT * FROM scheduled_jobs WHERE id = ?;

-- name: in_backoff
-- A job is in backoff (lifecycle.in_backoff) while it carries a retry count and will run again
-- on its own (models.LIVE_JOB_STATUSES).
retry_count > 0 AND status IN ('active', 'running', 'paused')

-- name: list_jobs_where
-- list_jobs' filters besides the brand, each off when NULL (0 for in_backoff): job_type,
-- statuses (a JSON list), in_backoff.
(:job_type IS NULL OR job_type = :job_type)
AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
AND (NOT :in_backoff OR ({in_backoff}))

-- name: list_jobs
-- Every brand's jobs; `:limit` -1 for no limit.
SELECT * FROM scheduled_jobs WHERE {list_jobs_where} ORDER BY id LIMIT :limit;

-- name: list_jobs_of_brand
-- One brand's jobs (NULL: the global ones), read by the index scheduled_jobs_brand.
SELECT * FROM scheduled_jobs WHERE brand_id IS :brand_id AND {list_jobs_where}
ORDER BY id LIMIT :limit;

-- name: list_jobs_live
-- Jobs that are not archived: a few per brand beside a growing archive. SQLite reads their
-- partial index scheduled_jobs_live only when the query states its condition and asks for no
-- other order (it would rather walk every job in id order), so the caller sorts them.
SELECT * FROM scheduled_jobs WHERE status <> 'archived' AND {list_jobs_where};

-- name: list_jobs_live_of_brand
SELECT * FROM scheduled_jobs
WHERE status <> 'archived' AND brand_id IS :brand_id AND {list_jobs_where};

-- name: update_job
-- An operator's edit. `{assignments}` is `, column = :column` for each field it changes (Python
-- checks them against EDITABLE_JOB_FIELDS): the SET names only those, because SQLite fires an
-- `AFTER UPDATE OF column` trigger (the key heads, the triggered jobs) whenever the SET names
-- the column, changed or not. `:statuses` (a JSON list) or NULL guards the job's status.
UPDATE scheduled_jobs SET updated_at = :updated_at, revision = revision + 1{assignments}
WHERE id = :job_id
  AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
RETURNING *;

-- name: register_worker
INSERT INTO workers (id, host, pid, started_at, last_seen_at, version)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
    started_at = excluded.started_at, last_seen_at = excluded.last_seen_at,
    version = excluded.version, stopped_at = NULL;

-- name: stop_worker
UPDATE workers SET last_seen_at = ?, stopped_at = ? WHERE id = ?;

-- name: forget_workers
DELETE FROM workers AS w WHERE w.last_seen_at < ? AND NOT EXISTS (
    SELECT 1 FROM scheduled_job_runs AS r
    WHERE r.status = 'running' AND r.worker_id = w.id);

-- name: claim_due_unkeyed
-- The next due jobs without a concurrency key, after (next_run_at, id).
SELECT j.id, j.next_run_at, j.retry_count FROM scheduled_jobs AS j
WHERE j.status = 'active' AND j.concurrency_key IS NULL AND j.next_run_at <= ?
  AND (j.next_run_at, j.id) > (?, ?)
ORDER BY j.next_run_at, j.id
LIMIT ?;

-- name: claim_due_key_heads
-- The next due keys without a running run, each with its head: (key, the row's next_run_at,
-- head id, head next_run_at, head retry_count), the head's columns NULL without an active job.
SELECT k.concurrency_key, k.next_run_at, j.id, j.next_run_at, j.retry_count
FROM (
    SELECT k.concurrency_key, k.next_run_at, (
            SELECT h.id FROM scheduled_jobs AS h
            WHERE h.concurrency_key = k.concurrency_key AND h.status = 'active'
              AND h.next_run_at IS NOT NULL  -- SQLite sorts NULL first: a job waiting on data
            ORDER BY h.next_run_at, h.id
            LIMIT 1
        ) AS head_id
    FROM concurrency_key_heads AS k
    WHERE k.next_run_at <= ? AND (k.next_run_at, k.concurrency_key) > (?, ?)
      AND NOT EXISTS (
            SELECT 1 FROM scheduled_job_runs AS r
            WHERE r.status = 'running' AND r.concurrency_key = k.concurrency_key)
    ORDER BY k.next_run_at, k.concurrency_key
    LIMIT ?
) AS k
LEFT JOIN scheduled_jobs AS j ON j.id = k.head_id;

-- name: claim_due_drop_key_head
DELETE FROM concurrency_key_heads WHERE concurrency_key = ?;

-- name: claim_due_raise_key_head
UPDATE concurrency_key_heads SET next_run_at = ? WHERE concurrency_key = ?;

-- name: claim_due_runs
INSERT INTO scheduled_job_runs (job_id, attempt, status, started_at, heartbeat_at, worker_id,
    lease_token, concurrency_key)
VALUES {rows}
RETURNING *;

-- name: claim_due_jobs
UPDATE scheduled_jobs SET status = 'running', updated_at = ?, last_run_id = (
    SELECT max(r.id) FROM scheduled_job_runs AS r WHERE r.job_id = scheduled_jobs.id)
WHERE id IN ({marks})
RETURNING *;

-- name: heartbeat_worker
UPDATE workers SET last_seen_at = ? WHERE id = ?;

-- name: heartbeat
UPDATE scheduled_job_runs SET heartbeat_at = ?
WHERE id = ? AND lease_token = ? AND status = 'running';

-- name: request_cancel
-- Asking again keeps the first request.
UPDATE scheduled_job_runs
SET cancel_requested_at = coalesce(cancel_requested_at, ?),
    cancel_requested_by = coalesce(cancel_requested_by, ?)
WHERE id = ? AND status = 'running'
RETURNING *;

-- name: cancel_requests
SELECT id, cancel_requested_by FROM scheduled_job_runs
WHERE id IN ({marks}) AND status = 'running' AND cancel_requested_at IS NOT NULL;

-- name: write_run_logs
-- A running run's log so far, written only under its lease.
UPDATE scheduled_job_runs SET logs = ?
WHERE id = ? AND lease_token = ? AND status = 'running';

-- name: lease_guard
r.lease_token = o.lease_token

-- name: is_stuck
-- A running run is stuck when its heartbeat is older than the cut-off; one that never sent a
-- heartbeat (heartbeat_at still equals started_at, as the claim set it) when it started before
-- the start-grace cut-off. Parameters: started_before, heartbeat_before.
r.status = 'running' AND r.heartbeat_at < CASE WHEN r.heartbeat_at = r.started_at THEN ? ELSE ? END

-- name: record_outcomes_runs
-- The outcomes (run_id, lease_token, status, finished_at, error_message, logs, steps) of the
-- runs still running where {guard} holds.
WITH o (run_id, lease_token, status, finished_at, error_message, logs, steps)
    AS (VALUES {rows})
UPDATE scheduled_job_runs AS r
SET status = o.status, finished_at = o.finished_at,
    error_message = o.error_message, logs = o.logs, steps = o.steps
FROM o
WHERE r.id = o.run_id AND r.status = 'running' AND {guard}
RETURNING id, job_id;

-- name: record_outcomes_jobs
-- The status applies only while the job is still running: an operator who paused or archived
-- it mid-run keeps their choice. A job edited during the run keeps its retry count for the
-- caller to count this run from (see Store.finish_run).
WITH u (job_id, status, next_run_at, retry_count, last_error, updated_at, revision)
    AS (VALUES {rows})
UPDATE scheduled_jobs AS j
SET status = CASE WHEN j.status = 'running' THEN u.status ELSE j.status END,
    next_run_at = u.next_run_at,
    retry_count = CASE WHEN j.revision = u.revision
        THEN u.retry_count ELSE j.retry_count END,
    last_error = u.last_error, updated_at = u.updated_at
FROM u WHERE j.id = u.job_id
RETURNING id, revision;

-- name: record_dataset
-- Timestamps only move forward: a run that finishes late cannot make data look older.
INSERT INTO dataset_status (brand_id, dataset, last_success_at, last_attempt_at,
    last_status, last_error, last_run_id, updated_at)
VALUES (:brand_id, :dataset, CASE WHEN :succeeded THEN :at END, :at, :status, :error,
    :run_id, :at)
ON CONFLICT (coalesce(brand_id, ''), dataset) DO UPDATE SET
    last_success_at = CASE
        WHEN :succeeded AND (last_success_at IS NULL OR last_success_at < :at) THEN :at
        ELSE last_success_at END,
    last_status = CASE WHEN last_attempt_at IS NULL OR last_attempt_at <= :at
        THEN :status ELSE last_status END,
    last_error = CASE WHEN last_attempt_at IS NULL OR last_attempt_at <= :at
        THEN :error ELSE last_error END,
    last_run_id = CASE WHEN last_attempt_at IS NULL OR last_attempt_at <= :at
        THEN :run_id ELSE last_run_id END,
    last_attempt_at = max(coalesce(last_attempt_at, :at), :at),
    updated_at = :at;

-- name: reapply_job_update
UPDATE scheduled_jobs
SET status = CASE WHEN status = :written THEN :status ELSE status END,
    next_run_at = :next_run_at, retry_count = :retry_count,
    last_error = :last_error, updated_at = :at
WHERE id = :job_id AND revision = :revision AND last_run_id = :run_id;

-- name: release_run
DELETE FROM scheduled_job_runs WHERE id = ? AND lease_token = ? AND status = 'running'
RETURNING job_id, brand_id;

-- name: release_run_triggers
-- An input success the run took, back to the pending triggers of the run's brand (:target),
-- coalesced with one that arrived since (the latest kept, successes added), for an input the
-- job still lists.
INSERT INTO dataset_triggers AS t (job_id, brand_id, scope, dataset, input_brand_id, run_id,
    succeeded_at, successes)
SELECT :job_id, :target, :scope, :dataset, :brand_id, :run_id, :at, :successes
WHERE EXISTS (SELECT 1 FROM job_inputs AS i WHERE i.job_id = :job_id AND i.kind = 'after'
                AND i.scope = :scope AND i.dataset = :dataset)
ON CONFLICT (job_id, coalesce(brand_id, ''), scope, dataset) DO UPDATE
SET run_id = CASE WHEN excluded.succeeded_at > t.succeeded_at
                  THEN excluded.run_id ELSE t.run_id END,
    input_brand_id = CASE WHEN excluded.succeeded_at > t.succeeded_at
                          THEN excluded.input_brand_id ELSE t.input_brand_id END,
    succeeded_at = max(t.succeeded_at, excluded.succeeded_at),
    successes = t.successes + excluded.successes;

-- name: release_run_last_run
SELECT max(id) FROM scheduled_job_runs WHERE job_id = ?;

-- name: release_run_job
-- triggered_at follows the triggers given back (scheduled_jobs_due_when_triggered moves
-- next_run_at to it).
UPDATE scheduled_jobs SET status = CASE WHEN status = 'running' THEN 'active' ELSE status END,
    last_run_id = :last_run_id, updated_at = :now, triggered_at = ({ready_at})
WHERE id = :job_id;

-- name: stuck_runs
-- Not in id order: asked for it, SQLite walks the whole run history in rowid order instead of
-- the few rows in the partial index of running runs; the caller sorts.
SELECT r.*, j.id AS j_id FROM scheduled_job_runs AS r
JOIN scheduled_jobs AS j ON j.id = r.job_id
WHERE {is_stuck};

-- name: prunable_runs
-- Finished runs older than the cut-off, oldest first, except each job's newest `keep_last` (the
-- subquery finds the keep_last-th newest run of the job; with fewer runs it is NULL and nothing
-- of that job goes). Parameters: finished_before, keep_last - 1.
SELECT r.id FROM scheduled_job_runs AS r
WHERE r.status <> 'running' AND r.finished_at < ?
  AND r.id < (SELECT n.id FROM scheduled_job_runs AS n WHERE n.job_id = r.job_id
              ORDER BY n.id DESC LIMIT 1 OFFSET ?)
ORDER BY r.finished_at

-- name: prune_runs
DELETE FROM scheduled_job_runs WHERE id IN ({prunable_runs} LIMIT ?);

-- name: count_prunable_runs
SELECT count(*) FROM ({prunable_runs});

-- name: purge_archived_jobs
DELETE FROM scheduled_jobs WHERE id IN (
    SELECT id FROM scheduled_jobs
    WHERE status = 'archived' AND updated_at < ?
    ORDER BY updated_at LIMIT ?);

-- name: count_purgeable_jobs
SELECT count(*) FROM scheduled_jobs WHERE status = 'archived' AND updated_at < ?;

-- name: claim_alert
UPDATE dataset_status SET alerted_state = ?
WHERE coalesce(brand_id, '') = ? AND dataset = ? AND alerted_state IS ?;

-- name: get_run
SELECT * FROM scheduled_job_runs WHERE id = ?;

-- name: list_runs
-- Every run, newest first, of a status or (NULL) any.
SELECT r.* FROM scheduled_job_runs AS r
WHERE (:status IS NULL OR r.status = :status)
ORDER BY r.id DESC LIMIT :limit;

-- name: list_runs_of_job
-- One job's runs, read by the index scheduled_job_runs_job; none unless the job is of the
-- brand asked for (:all_brands 0).
SELECT r.* FROM scheduled_job_runs AS r
WHERE r.job_id = :job_id AND (:status IS NULL OR r.status = :status)
  AND (:all_brands OR EXISTS (SELECT 1 FROM scheduled_jobs AS j
                                WHERE j.id = r.job_id AND j.brand_id IS :brand_id))
ORDER BY r.id DESC LIMIT :limit;

-- name: list_runs_of_brand
-- One brand's runs (NULL: the global jobs'), by its jobs (scheduled_jobs_brand) and their runs.
SELECT r.* FROM scheduled_job_runs AS r JOIN scheduled_jobs AS j ON j.id = r.job_id
WHERE j.brand_id IS :brand_id AND (:status IS NULL OR r.status = :status)
ORDER BY r.id DESC LIMIT :limit;

-- name: list_runs_running
-- The running runs, few, of a job or (NULL) any, of a brand or (:all_brands 1) any. Only the
-- literal status selects their partial index scheduled_job_runs_running, and SQLite reads it
-- only when asked for no order (as in stuck_runs), so the caller sorts them.
SELECT r.* FROM scheduled_job_runs AS r
WHERE r.status = 'running' AND (:job_id IS NULL OR r.job_id = :job_id)
  AND (:all_brands OR r.job_id IN (SELECT j.id FROM scheduled_jobs AS j
                                   WHERE j.brand_id IS :brand_id));

-- name: runs_by_id
SELECT * FROM scheduled_job_runs WHERE id IN ({marks});

-- name: dataset_statuses
SELECT * FROM dataset_status ORDER BY coalesce(brand_id, ''), dataset;

-- name: dataset_statuses_of_brand
-- The unique index's own expression, so that one brand is an index range.
SELECT * FROM dataset_status WHERE coalesce(brand_id, '') = ?
ORDER BY coalesce(brand_id, ''), dataset;

-- name: dataset_status
SELECT * FROM dataset_status WHERE coalesce(brand_id, '') = ? AND dataset = ?;

-- name: thresholds
SELECT * FROM dataset_thresholds ORDER BY dataset, brand_id;

-- name: set_threshold
INSERT INTO dataset_thresholds (brand_id, dataset, warn_after_seconds, error_after_seconds,
    updated_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (coalesce(brand_id, ''), dataset) DO UPDATE SET
    warn_after_seconds = excluded.warn_after_seconds,
    error_after_seconds = excluded.error_after_seconds,
    updated_at = excluded.updated_at;

-- name: delete_threshold
DELETE FROM dataset_thresholds WHERE coalesce(brand_id, '') = ? AND dataset = ?;

-- name: brand_ids
SELECT brand_id FROM scheduled_jobs WHERE brand_id IS NOT NULL
UNION SELECT brand_id FROM dataset_status WHERE brand_id IS NOT NULL
UNION SELECT brand_id FROM dataset_thresholds WHERE brand_id IS NOT NULL
ORDER BY 1;

-- name: set_datasets_retired
INSERT INTO dataset_status (brand_id, dataset, updated_at, retired_at)
VALUES (?, ?, ?, ?)
ON CONFLICT (coalesce(brand_id, ''), dataset) DO UPDATE
    SET retired_at = excluded.retired_at WHERE retired_at IS NULL;

-- name: set_datasets_retired_forget
-- Unretiring a dataset that never ran forgets it; one that ran is back in the gate.
DELETE FROM dataset_status WHERE coalesce(brand_id, '') = ? AND dataset = ?
    AND retired_at IS NOT NULL AND last_attempt_at IS NULL;

-- name: set_datasets_retired_clear
UPDATE dataset_status SET retired_at = NULL
WHERE coalesce(brand_id, '') = ? AND dataset = ? AND retired_at IS NOT NULL;

-- name: retire_brand_retired
SELECT 1 FROM brand_retirements WHERE brand_id = ?;

-- name: retire_brand_jobs
SELECT id, status FROM scheduled_jobs WHERE brand_id = ? AND status <> 'archived' ORDER BY id;

-- name: retire_brand
INSERT INTO brand_retirements (brand_id, retired_at, jobs, datasets) VALUES (?, ?, ?, ?);

-- name: retire_brand_archive
UPDATE scheduled_jobs SET status = 'archived', updated_at = ?
WHERE brand_id = ? AND status <> 'archived'
RETURNING *;

-- name: brand_retirements
SELECT * FROM brand_retirements ORDER BY brand_id;

-- name: restore_brand
DELETE FROM brand_retirements WHERE brand_id = ? RETURNING datasets;

-- name: restore_brand_job
UPDATE scheduled_jobs SET status = ?, next_run_at = ?, updated_at = ?
WHERE id = ? AND brand_id = ? AND status = 'archived';

-- name: workers
SELECT * FROM workers ORDER BY last_seen_at DESC;

-- == data-aware scheduling (beside PostgreSQL's 0014) =========================================

-- name: ready_at
-- When the job's pending triggers first make some brand's run ready (triggers.ready_at); NULL
-- when none is ready. A scalar subquery, filled into the statements that set triggered_at.
SELECT min(ready.at) FROM (
    SELECT max(t.succeeded_at) AS at FROM dataset_triggers AS t
    WHERE t.job_id = :job_id GROUP BY coalesce(t.brand_id, '')
    HAVING count(*) >= (SELECT count(*) FROM job_inputs AS i
                        WHERE i.job_id = :job_id AND i.kind = 'after')
) AS ready;

-- name: set_job_inputs_delete
DELETE FROM job_inputs WHERE job_id = ?;

-- name: set_job_inputs_insert
INSERT OR IGNORE INTO job_inputs (job_id, kind, scope, dataset)
SELECT id, ?, ?, ? FROM scheduled_jobs WHERE id = ?;

-- name: set_job_inputs_drop_triggers
-- Pending triggers of inputs the job no longer lists.
DELETE FROM dataset_triggers AS t WHERE t.job_id = :job_id AND NOT EXISTS (
    SELECT 1 FROM job_inputs AS i WHERE i.job_id = :job_id AND i.kind = 'after'
      AND i.scope = t.scope AND i.dataset = t.dataset);

-- name: set_job_inputs_job
UPDATE scheduled_jobs SET inputs = :inputs, max_hold_seconds = :max_hold_seconds,
    triggered_at = ({ready_at}), updated_at = :now, revision = revision + 1
WHERE id = :job_id
RETURNING *;

-- name: start_runs_claimed
SELECT job_id FROM scheduled_job_runs WHERE id = ? AND status = 'running' AND lease_token = ?;

-- name: start_runs_pick
-- The brand whose triggers were ready first.
SELECT t.brand_id FROM dataset_triggers AS t WHERE t.job_id = :job_id
GROUP BY t.brand_id
HAVING count(*) >= (SELECT count(*) FROM job_inputs AS i
                    WHERE i.job_id = :job_id AND i.kind = 'after')
ORDER BY max(t.succeeded_at), t.brand_id
LIMIT 1;

-- name: start_runs_take
DELETE FROM dataset_triggers WHERE job_id = ? AND brand_id IS ?
RETURNING scope, dataset, input_brand_id, run_id, succeeded_at, successes;

-- name: start_runs_job
UPDATE scheduled_jobs SET held_since = NULL, waiting_on = NULL, triggered_at = ({ready_at})
WHERE id = :job_id;

-- name: start_runs_run
UPDATE scheduled_job_runs SET brand_id = ?, triggered_by = ? WHERE id = ?
RETURNING *;

-- name: hold_runs_run
DELETE FROM scheduled_job_runs WHERE id = ? AND lease_token = ? AND status = 'running'
RETURNING job_id;

-- name: hold_runs_job
UPDATE scheduled_jobs SET status = CASE WHEN status = 'running' THEN 'active' ELSE status END,
    next_run_at = ?, held_since = ?, waiting_on = ?, updated_at = ?,
    last_run_id = (SELECT max(r.id) FROM scheduled_job_runs AS r
                   WHERE r.job_id = scheduled_jobs.id)
WHERE id = ?;
