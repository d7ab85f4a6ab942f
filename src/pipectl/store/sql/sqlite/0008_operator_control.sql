-- pipectl schema (SQLite): operator control.

-- A run an operator cancelled ends `cancelled`. SQLite cannot alter a CHECK constraint; its
-- documented way to loosen one is to edit the table's definition in sqlite_schema, which leaves
-- the rows and every other column as they are. RESET makes this connection read it again; the
-- ALTER TABLEs below bump the schema version, so every other connection does too.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql, 'CHECK (status IN (''running'', ''completed'', ''failed''))',
                  'CHECK (status IN (''running'', ''completed'', ''failed'', ''cancelled''))')
WHERE type = 'table' AND name = 'scheduled_job_runs';
PRAGMA writable_schema = RESET;

-- The cancellation is asked for through the store and read back by the worker at heartbeat.
ALTER TABLE scheduled_job_runs ADD COLUMN cancel_requested_at TEXT;
ALTER TABLE scheduled_job_runs ADD COLUMN cancel_requested_by TEXT;
