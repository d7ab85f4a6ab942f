-- pipectl schema v9 for SQLite: concurrency keys by job name (as PostgreSQL's v12, whose
-- comments say more). The default key was `job_type:brand`; it is now `name:brand` for a job
-- with a name of its own. SQLite has no sha256 for the digest that ends a long key, so the
-- keys equal to their job's old default are moved by pipectl.store.sqlite (the step it runs
-- after this version, with pipectl.concurrency.migrated_key); the triggers of v6 lower the new
-- keys' head rows. Live run logs need nothing new here: a running run's `logs` column is
-- written as the run goes.
SELECT 1;
