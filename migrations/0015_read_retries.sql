-- An image that cannot be read for a reason that may pass (a timeout, a lost connection, HTTP 5xx or 429 after every
-- fetch attempt) does not fail its task at once: the worker queues the task again to be published once `retry_at`
-- has passed (by the reconciler's next run; enqueue's own publishing waits too), and counts it in `read_retries`;
-- past the worker's limit it fails as before. `last_error` keeps the reason while the task waits. Both columns are
-- added without a table rewrite (a constant default), and the check NOT VALID: every existing row holds 0, so nothing
-- needs the table scanned under its lock; new values are checked. Workers of earlier builds publish waiting tasks
-- without waiting (they are read again sooner): restart every worker after this migration.
ALTER TABLE tasks ADD COLUMN read_retries smallint NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD CONSTRAINT tasks_read_retries_check CHECK (read_retries >= 0) NOT VALID;
ALTER TABLE tasks ADD COLUMN retry_at timestamptz;

COMMENT ON COLUMN tasks.read_retries IS
    'Times the task was queued again because its image could not be read for a reason that may pass.';
COMMENT ON COLUMN tasks.retry_at IS
    'When a task queued again after such a failure may be published; NULL for a task that is not waiting.';

GRANT UPDATE (read_retries, retry_at) ON tasks TO infmllm_worker;
-- A retry (failed to queued) starts the count again, as it does attempts.
GRANT UPDATE (read_retries, retry_at) ON tasks TO infmllm_client;

CREATE OR REPLACE FUNCTION tasks_client_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_has_role(current_user, 'infmllm_client', 'MEMBER')
        AND NOT pg_has_role(current_user, 'infmllm_worker', 'MEMBER') THEN
        IF NEW.status IS DISTINCT FROM OLD.status
            AND NOT (OLD.status = 'queued' AND NEW.status = 'cancelled')
            AND NOT (OLD.status = 'failed' AND NEW.status = 'queued') THEN
            RAISE EXCEPTION 'a client may cancel queued tasks and retry failed ones, not set task % from % to %',
                OLD.id, OLD.status, NEW.status USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.last_error IS DISTINCT FROM OLD.last_error AND NEW.last_error IS NOT NULL THEN
            RAISE EXCEPTION 'a client may clear a task''s error, not write one (task %)', OLD.id
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.attempts IS DISTINCT FROM OLD.attempts
            AND NOT (OLD.status = 'failed' AND NEW.status = 'queued' AND NEW.attempts = 0) THEN
            RAISE EXCEPTION 'a client may set a task''s attempts to 0 in a retry only, not from % to % (task %)',
                OLD.attempts, NEW.attempts, OLD.id USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF (NEW.read_retries IS DISTINCT FROM OLD.read_retries OR NEW.retry_at IS DISTINCT FROM OLD.retry_at)
            AND NOT (OLD.status = 'failed' AND NEW.status = 'queued' AND NEW.read_retries = 0
                     AND NEW.retry_at IS NULL) THEN
            RAISE EXCEPTION 'a client may start a task''s read retries again in a retry only (task %)', OLD.id
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    RETURN NEW;
END $$;
