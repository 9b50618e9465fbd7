-- A retry queues a failed task as a new one: besides clearing its error, it sets its attempts back to 0, so that
-- the limits on how often the model may start on a task (a lease expiring, a message dead-lettered) count from the
-- retry. Otherwise a task that failed by exhausting them fails again at the first worker lost after the retry. A
-- client may set attempts to 0 in a retry (failed to queued) and change them in no other way.
GRANT UPDATE (attempts) ON tasks TO infmllm_client;

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
    END IF;
    RETURN NEW;
END $$;
