-- pipectl schema v2: row-level security and grants, so that on Supabase only the service role
-- reaches pipectl. Harmless on plain PostgreSQL, where the Supabase roles do not exist.
--
-- Supabase's API exposes the tables and functions of its exposed schemas (`public`) to every
-- holder of the project's anon key (role `anon`) and to every signed-in user of the app
-- (`authenticated`), and its default privileges grant both roles everything created there.
-- pipectl's jobs, runs and datasets are for the service role only, so:
--
-- * every pipectl table has row-level security and no policy: a role that is neither the
--   table's owner nor BYPASSRLS (Supabase's service_role is) sees no row and writes none;
-- * PUBLIC, anon and authenticated lose every privilege on the tables and EXECUTE on every
--   pipectl_* function (pipectl_apply_run_result, internal, included);
-- * service_role gets EXECUTE and the table privileges the functions need: they run with the
--   caller's rights (SECURITY INVOKER), so no function can do more than its caller may.
--
-- On plain PostgreSQL, connect as the owner of the schema (the role that ran `db migrate`) or
-- as a role with BYPASSRLS: any other role now sees no rows.
--
-- A later migration that adds a table or a function must restrict it the same way;
-- tests/supabase/test_supabase_security.py checks every pipectl_* function and table.

ALTER TABLE scheduled_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE scheduled_job_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE dataset_status ENABLE ROW LEVEL SECURITY;
ALTER TABLE dataset_thresholds ENABLE ROW LEVEL SECURITY;
ALTER TABLE workers ENABLE ROW LEVEL SECURITY;
ALTER TABLE pipectl_schema_migrations ENABLE ROW LEVEL SECURITY;

DO $$
DECLARE
    -- The schema the pipectl tables were created in: the one this migration runs for.
    home CONSTANT oid := (SELECT relnamespace FROM pg_class
                          WHERE oid = 'scheduled_jobs'::regclass);
    home_name CONSTANT text := (SELECT nspname FROM pg_namespace WHERE oid = home);
    tables CONSTANT text[] := ARRAY['scheduled_jobs', 'scheduled_job_runs', 'dataset_status',
        'dataset_thresholds', 'workers', 'pipectl_schema_migrations'];
    outsider text;
    table_name text;
    sequence_name text;
    fn regprocedure;
BEGIN
    FOREACH table_name IN ARRAY tables LOOP
        EXECUTE format('REVOKE ALL ON %I.%I FROM PUBLIC', home_name, table_name);
    END LOOP;
    FOR fn IN
        SELECT p.oid::regprocedure FROM pg_proc AS p
        WHERE p.pronamespace = home AND p.proname LIKE 'pipectl\_%'
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
    END LOOP;

    FOREACH outsider IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        CONTINUE WHEN NOT EXISTS (SELECT FROM pg_roles WHERE rolname = outsider);
        FOREACH table_name IN ARRAY tables LOOP
            EXECUTE format('REVOKE ALL ON %I.%I FROM %I',
                home_name, table_name, outsider);
        END LOOP;
        -- The identity columns' sequences.
        FOR sequence_name IN
            SELECT s.oid::regclass::text FROM pg_class AS s
            JOIN pg_depend AS d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
                AND d.deptype = 'i'
            JOIN pg_class AS t ON t.oid = d.refobjid
            WHERE s.relkind = 'S' AND t.relnamespace = home AND t.relname = ANY (tables)
        LOOP
            EXECUTE format('REVOKE ALL ON SEQUENCE %s FROM %I', sequence_name, outsider);
        END LOOP;
        FOR fn IN
            SELECT p.oid::regprocedure FROM pg_proc AS p
            WHERE p.pronamespace = home AND p.proname LIKE 'pipectl\_%'
        LOOP
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %I', fn, outsider);
        END LOOP;
    END LOOP;

    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
        FOREACH table_name IN ARRAY tables LOOP
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.%I TO service_role',
                home_name, table_name);
        END LOOP;
        FOR fn IN
            SELECT p.oid::regprocedure FROM pg_proc AS p
            WHERE p.pronamespace = home AND p.proname LIKE 'pipectl\_%'
        LOOP
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', fn);
        END LOOP;
    END IF;
END
$$;
