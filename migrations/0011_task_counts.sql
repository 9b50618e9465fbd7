-- A job's task counts by state without counting its tasks: `progress` and `jobs` read a handful of rows where a job
-- of millions of tasks took a second or more of counting, every second, per watcher. Triggers on tasks append the
-- change of each statement (a row per job and state whose count it changed, by how much) to task_counts, an
-- append-only ledger: writers never wait for one another on a shared counter row, so workers recording results
-- never queue or deadlock there. A job's counts are the sums of its rows; compact_task_counts folds a job's rows into
-- one per state (readers call it once a job has many, and the workers' reconciler for every job that has). The rows
-- have no foreign key, so that deleting a job (its tasks go by cascade, which the triggers see) works; a job's rows
-- go with it.
CREATE TABLE task_counts (
    job_id bigint NOT NULL,
    status text NOT NULL,
    tasks  bigint NOT NULL
);
CREATE INDEX task_counts_job ON task_counts (job_id);

COMMENT ON TABLE task_counts IS
    'Changes to the number of tasks per job and state; a job''s counts are the sums of its rows (see task_states for a count of the tasks themselves).';

-- The functions run as their owner, so that the roles need no right to write the ledger, with a fixed search path
-- that puts pg_temp last (a caller's temporary table named task_counts or jobs must not stand in for the real one)
-- and the tables named with their schema besides.
CREATE FUNCTION task_counts_inserted() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO public.task_counts (job_id, status, tasks)
    SELECT job_id, status, count(*) FROM inserted GROUP BY job_id, status;
    RETURN NULL;
END $$;

CREATE FUNCTION task_counts_updated() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO public.task_counts (job_id, status, tasks)
    SELECT job_id, status, sum(change)
    FROM (SELECT job_id, status, -1 AS change FROM old_tasks UNION ALL SELECT job_id, status, 1 FROM new_tasks) changes
    GROUP BY job_id, status HAVING sum(change) <> 0;
    RETURN NULL;
END $$;

-- Tasks deleted with their job (the cascade) count for nothing: the job's rows go with it.
CREATE FUNCTION task_counts_deleted() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO public.task_counts (job_id, status, tasks)
    SELECT job_id, status, -count(*) FROM deleted d WHERE EXISTS (SELECT FROM public.jobs j WHERE j.id = d.job_id)
    GROUP BY job_id, status;
    RETURN NULL;
END $$;

CREATE FUNCTION task_counts_truncated() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    DELETE FROM public.task_counts;
    RETURN NULL;
END $$;

-- A deleted job's rows go with it.
CREATE FUNCTION task_counts_job_deleted() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    DELETE FROM public.task_counts WHERE job_id IN (SELECT id FROM deleted);
    RETURN NULL;
END $$;

-- Folds `job`'s rows into one per state in one statement. A row a concurrent transaction adds meanwhile is not
-- seen, so it stays and is counted; two compactions at once never fold a row twice (the second skips rows the first
-- deleted).
CREATE FUNCTION compact_task_counts(job bigint) RETURNS void LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
    WITH folded AS (DELETE FROM public.task_counts WHERE job_id = job RETURNING status, tasks)
    INSERT INTO public.task_counts (job_id, status, tasks)
    SELECT job, status, sum(tasks) FROM folded GROUP BY status HAVING sum(tasks) <> 0;
$$;

LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE;

CREATE TRIGGER task_counts_inserted AFTER INSERT ON tasks REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION task_counts_inserted();
CREATE TRIGGER task_counts_updated AFTER UPDATE ON tasks REFERENCING OLD TABLE AS old_tasks NEW TABLE AS new_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION task_counts_updated();
CREATE TRIGGER task_counts_deleted AFTER DELETE ON tasks REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION task_counts_deleted();
CREATE TRIGGER task_counts_truncated AFTER TRUNCATE ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION task_counts_truncated();
CREATE TRIGGER task_counts_job_deleted AFTER DELETE ON jobs REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION task_counts_job_deleted();

-- The tasks there are now, with the table locked against writes until this migration commits.
INSERT INTO public.task_counts (job_id, status, tasks) SELECT job_id, status, count(*) FROM tasks GROUP BY job_id, status;

-- A job's progress in SQL from the ledger, as cheap for a job of millions of tasks as for a small one (task_states
-- counts the tasks themselves, and has their times).
CREATE VIEW job_progress AS
SELECT j.name AS job, j.id AS job_id, j.task_kind, j.model, (j.cancelled_at IS NOT NULL) AS job_cancelled,
       c.status, sum(c.tasks)::bigint AS tasks
FROM task_counts c
JOIN jobs j ON j.id = c.job_id
GROUP BY j.id, c.status
HAVING sum(c.tasks) <> 0;

COMMENT ON VIEW job_progress IS 'Tasks per job and state from the task_counts ledger: a job''s progress in SQL, at any size.';

GRANT SELECT ON job_progress TO infmllm_reader, infmllm_client;

REVOKE ALL ON task_counts FROM PUBLIC;
REVOKE ALL ON FUNCTION compact_task_counts(bigint) FROM PUBLIC;
GRANT SELECT ON task_counts TO infmllm_client, infmllm_worker;
GRANT EXECUTE ON FUNCTION compact_task_counts(bigint) TO infmllm_client, infmllm_worker;
