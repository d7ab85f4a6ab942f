-- pipectl schema v4 for SQLite: an operator's edit made while a run is in progress stands.
-- Every operator edit (update_job) bumps the job's revision; a run's outcome carries the
-- revision its job's next state was computed from, and when the job's revision has moved on by
-- the time the run is recorded, that next state is computed again from the job as it is now.
ALTER TABLE scheduled_jobs ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
