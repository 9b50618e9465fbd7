-- Clients (enqueue, retry, cancel) may change a task's status in two ways only: a queued task to cancelled, and a
-- failed one back to queued (a retry, which may clear its error). Marking tasks done, failed or running, or writing
-- an error into one, is for workers: the column grants of 0004 cannot say which values, so a trigger does. Roles
-- that are workers too (and superusers, members of every role) are not limited here.
CREATE FUNCTION tasks_client_guard() RETURNS trigger LANGUAGE plpgsql AS $$
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
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER tasks_client_guard BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_client_guard();

-- Nobody but the owner creates objects in the schema (PostgreSQL 15 already starts so; older clusters and
-- databases made from an older template do not).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
