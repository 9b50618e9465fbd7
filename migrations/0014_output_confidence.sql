-- How sure the model was of each output: the sum of its output tokens' log-probabilities under the model (greedy and
-- beam search as transformers' compute_transition_scores gives them; sampling before temperature, top-k and top-p).
-- NULL for results written before this migration, and where the model's numbers were not finite. The views give it
-- as a confidence in 0..1, the geometric mean of the tokens' probabilities, exp(output_logprob / output_token_count),
-- to filter or rank captions, answers and boxes by. Added without a default: no table rewrite.
ALTER TABLE results ADD COLUMN output_logprob double precision;

COMMENT ON COLUMN results.output_logprob IS
    'Sum of the output tokens'' log-probabilities under the model (<= 0); NULL when unknown. '
    'Confidence: exp(output_logprob / output_token_count).';

-- The one definition of a result's confidence, for the views and export: NULL without a log-probability or without
-- tokens; the floor keeps exp() from underflowing, which PostgreSQL reports as an error.
CREATE FUNCTION output_confidence(logprob double precision, tokens integer) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN logprob IS NULL OR tokens = 0 THEN NULL ELSE exp(greatest(logprob / tokens, -700)) END $$;

-- The views restated whole, new columns last: captions and answers also gain their image's orientation, as boxes has.
CREATE OR REPLACE VIEW captions AS
SELECT j.name AS job, j.id AS job_id, t.id AS task_id, t.image_uri, t.image_sha256,
       r.output_text AS caption, r.model_name, r.created_at,
       r.weights_sha256, r.prompt, r.decoding, r.device, r.worker, r.prompt_token_count, r.output_token_count,
       r.timings_ms, r.reused_from, t.image_width, t.image_height,
       t.metadata, t.image_orientation, r.output_logprob,
       output_confidence(r.output_logprob, r.output_token_count) AS confidence
FROM results r
JOIN tasks t ON t.id = r.task_id
JOIN jobs j ON j.id = r.job_id
WHERE j.task_kind = 'caption';

CREATE OR REPLACE VIEW answers AS
SELECT j.name AS job, j.id AS job_id, t.id AS task_id, t.image_uri, t.image_sha256, j.task_kind,
       t.input_text AS question, r.output_text AS answer, r.model_name, r.created_at,
       r.weights_sha256, r.prompt, r.decoding, r.device, r.worker, r.prompt_token_count, r.output_token_count,
       r.timings_ms, r.reused_from, t.image_width, t.image_height,
       t.metadata, t.image_orientation, r.output_logprob,
       output_confidence(r.output_logprob, r.output_token_count) AS confidence
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
       t.metadata, t.image_orientation, r.output_logprob,
       output_confidence(r.output_logprob, r.output_token_count) AS confidence
FROM results r
JOIN tasks t ON t.id = r.task_id
JOIN jobs j ON j.id = r.job_id
LEFT JOIN result_boxes b ON b.task_id = r.task_id
WHERE j.task_kind = 'ground';
