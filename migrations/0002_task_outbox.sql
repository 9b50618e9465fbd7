-- The outbox: when each task's queue message was confirmed by the broker. `enqueue` and `retry` commit tasks, then
-- publish, then set this; a task left queued without it (the broker was down, the process died in between) is
-- republished by the reconciler after a grace period. Tasks that have ended or are running were published; the
-- ones still queued are published again, because task messages now travel on one queue per model
-- (<prefix>.model.<name>) and their old messages sit in the former shared queue (<prefix>.tasks), which nothing
-- consumes any more and can be deleted once empty of anything else.
ALTER TABLE tasks ADD COLUMN published_at timestamptz;
UPDATE tasks SET published_at = enqueued_at WHERE status <> 'queued';

COMMENT ON COLUMN tasks.published_at IS 'When the broker confirmed this task''s message; NULL while it still has to be published.';
COMMENT ON COLUMN tasks.attempts IS 'How many times the model started on this task.';

-- What the reconciler scans: queued tasks with no confirmed message, oldest first.
CREATE INDEX tasks_unpublished ON tasks (enqueued_at) WHERE published_at IS NULL AND status = 'queued';
