-- Least privilege: three group roles, each with only what its programs do. Log in as a user that is a member of one:
--   infmllm_worker   workers: read jobs and tasks, update task state, insert results and boxes; no DDL, no DELETE
--   infmllm_client   enqueue, retry, cancel, progress, export: create jobs, add tasks, cancel and retry; read all
--   infmllm_reader   analysts: SELECT on the captions, answers and boxes views only
-- The role that applies migrations owns the tables. Roles are global to the PostgreSQL cluster: this migration
-- creates the missing ones when the migrating role may (CREATEROLE), and otherwise asks for them to be created first
-- (ops/services.sh does, on the local cluster).
DO $$
DECLARE
    wanted text;
BEGIN
    FOREACH wanted IN ARRAY ARRAY['infmllm_worker', 'infmllm_client', 'infmllm_reader'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = wanted) THEN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = current_user AND (rolcreaterole OR rolsuper)) THEN
                RAISE EXCEPTION 'role % does not exist and % may not create it: run CREATE ROLE % NOLOGIN as a '
                    'role with CREATEROLE, then migrate again', wanted, current_user, wanted;
            END IF;
            EXECUTE format('CREATE ROLE %I NOLOGIN', wanted);
        END IF;
    END LOOP;
END $$;

GRANT USAGE ON SCHEMA public TO infmllm_worker, infmllm_client, infmllm_reader;

-- Workers.
GRANT SELECT ON jobs, tasks, results, result_boxes, schema_migrations TO infmllm_worker;
GRANT UPDATE (status, attempts, worker, started_at, finished_at, last_error, image_sha256, image_width, image_height,
              published_at) ON tasks TO infmllm_worker;
GRANT INSERT ON results, result_boxes TO infmllm_worker;

-- Clients.
GRANT SELECT ON jobs, tasks, results, result_boxes, captions, answers, boxes, schema_migrations TO infmllm_client;
GRANT INSERT (name, task_kind, model, prompt_template, generation, reuse_results) ON jobs TO infmllm_client;
GRANT UPDATE (cancelled_at, reuse_results) ON jobs TO infmllm_client;
GRANT INSERT (job_id, image_uri, input_text) ON tasks TO infmllm_client;
GRANT UPDATE (status, last_error, finished_at, published_at, enqueued_at) ON tasks TO infmllm_client;

-- Readers: the views run with their owner's rights, so no table is readable directly.
GRANT SELECT ON captions, answers, boxes TO infmllm_reader;
