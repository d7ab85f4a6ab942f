-- pipectl schema: operator control.

-- Several operator edits in one transaction (`jobs pause --brand acme`): p_updates is
-- [{"id": 3, "changes": {…}}, …], each applied as pipectl_update_job applies it, in id order
-- (so two concurrent calls lock their jobs in the same order). Returns the jobs changed.
CREATE FUNCTION pipectl_update_jobs(
    p_updates jsonb,
    p_now timestamptz,
    p_only_if_status text[] DEFAULT NULL
) RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
DECLARE
    item jsonb;
    job jsonb;
BEGIN
    FOR item IN
        SELECT u.value FROM jsonb_array_elements(p_updates) AS u
        ORDER BY (u.value ->> 'id')::bigint
    LOOP
        job := pipectl_update_job((item ->> 'id')::bigint, item -> 'changes', p_now,
                                  p_only_if_status);
        IF job IS NOT NULL THEN
            RETURN NEXT job;
        END IF;
    END LOOP;
END
$$;

SELECT pipectl_restrict_functions();
