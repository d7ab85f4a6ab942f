-- pipectl schema v16: a claimed run given back returns the input successes it took.
--
-- A run of a job with inputs takes its brand's pending triggers when it starts
-- (pipectl_start_runs), before it runs; a worker gives back the batch-mates of a run that
-- outlasts a quick one, and a given-back run is deleted, so the triggers it took must go back
-- to dataset_triggers in the same transaction, or that brand's run is never made.

DROP FUNCTION pipectl_release_run(bigint, text, timestamptz);

-- Gives back a claimed run that never started: deletes it, puts its job back to `active` with
-- the same next_run_at, and returns p_triggers (dataflow.given_back: what the run took, not
-- what it carried over) to the pending triggers of the run's brand, coalesced with any that
-- arrived since (the latest kept, successes added), for the inputs the job still lists.
-- p_triggers: [{"scope", "dataset", "brand_id", "run_id", "at", "successes"}, …]
CREATE FUNCTION pipectl_release_run(
    p_run_id bigint,
    p_lease_token text,
    p_now timestamptz,
    p_triggers jsonb DEFAULT '[]'
) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    released record;
BEGIN
    DELETE FROM scheduled_job_runs
    WHERE id = p_run_id AND lease_token = p_lease_token AND status = 'running'
    RETURNING job_id, brand_id INTO released;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO dataset_triggers AS t (job_id, brand_id, scope, dataset, input_brand_id, run_id,
        succeeded_at, successes)
    SELECT released.job_id, released.brand_id, g.scope, g.dataset, g.brand_id, g.run_id, g.at,
        g.successes
    FROM jsonb_to_recordset(p_triggers) AS g (scope text, dataset text, brand_id text,
        run_id bigint, at timestamptz, successes integer)
    WHERE EXISTS (SELECT FROM job_inputs AS i WHERE i.job_id = released.job_id
                    AND i.kind = 'after' AND i.scope = g.scope AND i.dataset = g.dataset)
    ON CONFLICT (job_id, (coalesce(brand_id, '')), scope, dataset) DO UPDATE
    SET run_id = CASE WHEN excluded.succeeded_at > t.succeeded_at
                      THEN excluded.run_id ELSE t.run_id END,
        input_brand_id = CASE WHEN excluded.succeeded_at > t.succeeded_at
                              THEN excluded.input_brand_id ELSE t.input_brand_id END,
        succeeded_at = greatest(t.succeeded_at, excluded.succeeded_at),
        successes = t.successes + excluded.successes;
    -- next_run_at is named so that the key-head trigger (0008) sees the move that
    -- scheduled_jobs_due_when_triggered makes.
    UPDATE scheduled_jobs AS j
    SET status = CASE WHEN j.status = 'running' THEN 'active' ELSE j.status END,
        last_run_id = (SELECT max(r.id) FROM scheduled_job_runs AS r
                       WHERE r.job_id = released.job_id),
        triggered_at = pipectl_ready_at(j.id), next_run_at = j.next_run_at, updated_at = p_now
    WHERE j.id = released.job_id;
    RETURN true;
END
$$;

SELECT pipectl_restrict_functions();
