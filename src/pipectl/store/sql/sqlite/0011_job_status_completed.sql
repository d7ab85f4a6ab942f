-- pipectl schema (SQLite): a job's status is one of active, paused, running, failed, archived.

-- `completed` is a run's outcome, never a job's (a one-time job that succeeds is archived).
-- pipectl never wrote it, but a job row that holds it becomes `archived`, as a succeeded
-- one-time job is, dated now (in the one text form of a timestamp) so that retention keeps it
-- its full window; then no row breaks the narrower check.
UPDATE scheduled_jobs
SET status = 'archived', updated_at = strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000+00:00'
WHERE status = 'completed';

-- SQLite cannot alter a CHECK constraint; as in 0008, the table's definition is edited in
-- sqlite_schema, which leaves its rows, indexes and triggers as they are. RESET makes this
-- connection read it again; a table created and dropped bumps the schema version, so every
-- other connection does too.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql,
                  'CHECK (status IN (''active'', ''paused'', ''running'', ''completed'', ''failed'', ''archived''))',
                  'CHECK (status IN (''active'', ''paused'', ''running'', ''failed'', ''archived''))')
WHERE type = 'table' AND name = 'scheduled_jobs';
PRAGMA writable_schema = RESET;
CREATE TABLE pipectl_schema_bump (x INTEGER);
DROP TABLE pipectl_schema_bump;
