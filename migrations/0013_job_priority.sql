-- A job's priority: its tasks are published to its model's queue for that lane (high, normal or low), and workers
-- take a lower lane's tasks only while the higher lanes have none ready. RabbitMQ 3.10's quorum queues have no
-- message priorities, so each lane is a queue of its own; normal is the model's queue as it always was.
ALTER TABLE jobs ADD COLUMN priority text NOT NULL DEFAULT 'normal'
    CONSTRAINT jobs_priority_check CHECK (priority IN ('high', 'normal', 'low'));

GRANT INSERT (priority), UPDATE (priority) ON jobs TO infmllm_client;

COMMENT ON COLUMN jobs.priority IS 'The queue lane of the job''s tasks: high, normal or low (enqueue --priority); tasks published before a change stay in their lane.';
