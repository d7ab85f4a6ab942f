-- pipectl schema v6 for SQLite: a claim reads one job per concurrency key, however many wait
-- behind it (as PostgreSQL's v8, whose comments say more).
--
-- A claim reads due jobs without a key from their own due index, and one head per key:
-- concurrency_key_heads lists every key with active jobs, in the order of a time at or before
-- its head's next_run_at, and the head itself is one probe of scheduled_jobs_key_queue.

-- Replaces scheduled_jobs_due (every active job in due order), which nothing else reads: a
-- planner that took it to find a key's head would read every due job before it.
DROP INDEX scheduled_jobs_due;
CREATE INDEX scheduled_jobs_due_unkeyed ON scheduled_jobs (next_run_at, id)
    WHERE status = 'active' AND concurrency_key IS NULL;
CREATE INDEX scheduled_jobs_key_queue ON scheduled_jobs (concurrency_key, next_run_at, id)
    WHERE status = 'active' AND concurrency_key IS NOT NULL;

-- A key's next_run_at is never later than that of the key's oldest active job: every write that
-- makes a job active or moves it lowers it (the triggers below); a claim raises it to the head
-- it read, or deletes the row of a key without active jobs.
CREATE TABLE concurrency_key_heads (
    concurrency_key TEXT PRIMARY KEY,
    next_run_at     TEXT NOT NULL
);
CREATE INDEX concurrency_key_heads_due ON concurrency_key_heads (next_run_at, concurrency_key);

INSERT INTO concurrency_key_heads (concurrency_key, next_run_at)
SELECT concurrency_key, min(next_run_at) FROM scheduled_jobs
WHERE status = 'active' AND concurrency_key IS NOT NULL AND next_run_at IS NOT NULL
GROUP BY concurrency_key;

CREATE TRIGGER scheduled_jobs_inserted_heads AFTER INSERT ON scheduled_jobs
WHEN NEW.status = 'active' AND NEW.concurrency_key IS NOT NULL AND NEW.next_run_at IS NOT NULL
BEGIN
    INSERT INTO concurrency_key_heads (concurrency_key, next_run_at)
    VALUES (NEW.concurrency_key, NEW.next_run_at)
    ON CONFLICT (concurrency_key) DO UPDATE
    SET next_run_at = min(next_run_at, excluded.next_run_at);
END;

CREATE TRIGGER scheduled_jobs_updated_heads
AFTER UPDATE OF status, next_run_at, concurrency_key ON scheduled_jobs
WHEN NEW.status = 'active' AND NEW.concurrency_key IS NOT NULL AND NEW.next_run_at IS NOT NULL
BEGIN
    INSERT INTO concurrency_key_heads (concurrency_key, next_run_at)
    VALUES (NEW.concurrency_key, NEW.next_run_at)
    ON CONFLICT (concurrency_key) DO UPDATE
    SET next_run_at = min(next_run_at, excluded.next_run_at);
END;
