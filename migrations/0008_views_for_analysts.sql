-- What an analyst reading the views (infmllm_reader) could not see: how each result was made, and where a job
-- stands. The result views gain the provenance columns at their end (CREATE OR REPLACE VIEW keeps the existing
-- columns as they are, so queries written for them still run), and two views show task states and failures.

CREATE OR REPLACE VIEW captions AS
SELECT j.name AS job, j.id AS job_id, t.id AS task_id, t.image_uri, t.image_sha256,
       r.output_text AS caption, r.model_name, r.created_at,
       r.weights_sha256, r.prompt, r.decoding, r.device, r.worker, r.prompt_token_count, r.output_token_count,
       r.timings_ms, r.reused_from, t.image_width, t.image_height
FROM results r
JOIN tasks t ON t.id = r.task_id
JOIN jobs j ON j.id = r.job_id
WHERE j.task_kind = 'caption';

CREATE OR REPLACE VIEW answers AS
SELECT j.name AS job, j.id AS job_id, t.id AS task_id, t.image_uri, t.image_sha256, j.task_kind,
       t.input_text AS question, r.output_text AS answer, r.model_name, r.created_at,
       r.weights_sha256, r.prompt, r.decoding, r.device, r.worker, r.prompt_token_count, r.output_token_count,
       r.timings_ms, r.reused_from, t.image_width, t.image_height
FROM results r
JOIN tasks t ON t.id = r.task_id
JOIN jobs j ON j.id = r.job_id
WHERE j.task_kind IN ('vqa', 'chat');

CREATE OR REPLACE VIEW boxes AS
SELECT j.name AS job, j.id AS job_id, t.id AS task_id, t.image_uri, t.image_width, t.image_height,
       t.input_text AS expression, r.output_text AS raw_output, (b.task_id IS NOT NULL) AS parsed,
       b.ordinal, b.x1, b.y1, b.x2, b.y2, b.x1_norm, b.y1_norm, b.x2_norm, b.y2_norm,
       r.model_name, r.created_at,
       t.image_sha256, r.weights_sha256, r.prompt, r.decoding, r.device, r.worker, r.reused_from
FROM results r
JOIN tasks t ON t.id = r.task_id
JOIN jobs j ON j.id = r.job_id
LEFT JOIN result_boxes b ON b.task_id = r.task_id
WHERE j.task_kind = 'ground';

-- One row per job and task state: `SELECT * FROM task_states WHERE job = 'photos'` is a job's progress.
CREATE VIEW task_states AS
SELECT j.name AS job, j.id AS job_id, j.task_kind, j.model, (j.cancelled_at IS NOT NULL) AS job_cancelled,
       t.status, count(*) AS tasks, min(t.enqueued_at) AS first_enqueued_at, max(t.finished_at) AS last_finished_at
FROM tasks t
JOIN jobs j ON j.id = t.job_id
GROUP BY j.id, t.status;

-- Every failed task with its reason, as `infmllm show` groups them.
CREATE VIEW failures AS
SELECT j.name AS job, j.id AS job_id, t.id AS task_id, t.image_uri, t.input_text, t.last_error AS reason,
       t.attempts, t.finished_at
FROM tasks t
JOIN jobs j ON j.id = t.job_id
WHERE t.status = 'failed';

GRANT SELECT ON task_states, failures TO infmllm_reader, infmllm_client;

COMMENT ON VIEW task_states IS 'Tasks per job and state: a job''s progress in SQL.';
COMMENT ON VIEW failures IS 'Failed tasks with their reasons.';
