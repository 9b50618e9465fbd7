-- What a manifest line carries besides the image and its text (a record id, a source, tags), kept with the task and
-- given back with its result by export and the views, so that results join back to the user's own records.
ALTER TABLE tasks ADD COLUMN metadata jsonb CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object');
GRANT INSERT (metadata) ON tasks TO infmllm_client;

COMMENT ON COLUMN tasks.metadata IS 'The manifest line''s other fields (enqueue), as given; NULL when it had none.';

CREATE OR REPLACE VIEW captions AS
SELECT j.name AS job, j.id AS job_id, t.id AS task_id, t.image_uri, t.image_sha256,
       r.output_text AS caption, r.model_name, r.created_at,
       r.weights_sha256, r.prompt, r.decoding, r.device, r.worker, r.prompt_token_count, r.output_token_count,
       r.timings_ms, r.reused_from, t.image_width, t.image_height,
       t.metadata
FROM results r
JOIN tasks t ON t.id = r.task_id
JOIN jobs j ON j.id = r.job_id
WHERE j.task_kind = 'caption';

CREATE OR REPLACE VIEW answers AS
SELECT j.name AS job, j.id AS job_id, t.id AS task_id, t.image_uri, t.image_sha256, j.task_kind,
       t.input_text AS question, r.output_text AS answer, r.model_name, r.created_at,
       r.weights_sha256, r.prompt, r.decoding, r.device, r.worker, r.prompt_token_count, r.output_token_count,
       r.timings_ms, r.reused_from, t.image_width, t.image_height,
       t.metadata
FROM results r
JOIN tasks t ON t.id = r.task_id
JOIN jobs j ON j.id = r.job_id
WHERE j.task_kind IN ('vqa', 'chat');

CREATE OR REPLACE VIEW boxes AS
SELECT j.name AS job, j.id AS job_id, t.id AS task_id, t.image_uri, t.image_width, t.image_height,
       t.input_text AS expression, r.output_text AS raw_output, (b.task_id IS NOT NULL) AS parsed,
       b.ordinal, b.x1, b.y1, b.x2, b.y2, b.x1_norm, b.y1_norm, b.x2_norm, b.y2_norm,
       r.model_name, r.created_at,
       t.image_sha256, r.weights_sha256, r.prompt, r.decoding, r.device, r.worker, r.reused_from,
       t.metadata
FROM results r
JOIN tasks t ON t.id = r.task_id
JOIN jobs j ON j.id = r.job_id
LEFT JOIN result_boxes b ON b.task_id = r.task_id
WHERE j.task_kind = 'ground';
