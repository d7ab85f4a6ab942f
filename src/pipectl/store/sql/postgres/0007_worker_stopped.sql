-- A worker that stops cleanly says so: `status`, `doctor` and the metrics count it out at once
-- instead of for worker_stale_after after its last heartbeat. pipectl_workers() and the status
-- snapshot return whole rows, so they carry the new column as they are.
ALTER TABLE workers ADD COLUMN stopped_at timestamptz;

-- As in 0001, and a worker id that registers again (a restarted `--worker-id`) is running.
CREATE OR REPLACE FUNCTION pipectl_register_worker(
    p_id text,
    p_host text,
    p_pid integer,
    p_started_at timestamptz,
    p_last_seen_at timestamptz,
    p_version text
) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO workers (id, host, pid, started_at, last_seen_at, version)
    VALUES (p_id, p_host, p_pid, p_started_at, p_last_seen_at, p_version)
    ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
        started_at = excluded.started_at, last_seen_at = excluded.last_seen_at,
        version = excluded.version, stopped_at = NULL
$$;

-- A clean stop: last seen, and stopped, at p_now.
CREATE FUNCTION pipectl_stop_worker(p_worker_id text, p_now timestamptz) RETURNS void
LANGUAGE sql AS $$
    UPDATE workers SET last_seen_at = p_now, stopped_at = p_now WHERE id = p_worker_id
$$;

-- The new function gets the grants of migration 0002: the service role only.
SELECT pipectl_restrict_functions();
