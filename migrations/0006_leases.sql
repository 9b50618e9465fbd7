-- No task stays running or queued forever. A running task holds a lease its worker renews; once the lease has
-- expired (the worker died, or hangs, without the broker noticing) the reconciler queues the task again. A queued
-- task whose message was published long ago and never delivered (a purged queue, a message lost in an upgrade) is
-- published again once its model's queue is empty. The reconciler is one worker at a time, holding a lease on the
-- single row of `reconciler`, which only workers may take.
ALTER TABLE tasks
    ADD COLUMN lease_expires_at timestamptz,
    ADD COLUMN delivered_at timestamptz;

COMMENT ON COLUMN tasks.lease_expires_at IS 'While running: when the task is queued again unless its worker renews.';
COMMENT ON COLUMN tasks.delivered_at IS 'When a worker last received the task''s message.';

CREATE INDEX tasks_running_by_worker ON tasks (worker) WHERE status = 'running';
CREATE INDEX tasks_running_lease ON tasks (lease_expires_at) WHERE status = 'running';
CREATE INDEX tasks_queued_published ON tasks (published_at) WHERE status = 'queued';

CREATE TABLE reconciler (
    id           integer PRIMARY KEY CHECK (id = 1),
    holder       text,
    held_until   timestamptz,
    last_run_at  timestamptz
);
INSERT INTO reconciler (id) VALUES (1);

COMMENT ON TABLE reconciler IS 'The reconciler''s lease: one worker at a time republishes, requeues and rescues.';

GRANT UPDATE (lease_expires_at, delivered_at) ON tasks TO infmllm_worker;
GRANT SELECT, UPDATE (holder, held_until, last_run_at) ON reconciler TO infmllm_worker;
GRANT SELECT ON reconciler TO infmllm_client;
