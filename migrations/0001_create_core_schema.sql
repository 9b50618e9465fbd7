-- The core schema: jobs, their tasks (one image and its text input each), and results typed for SQL.
-- Applied by `infmllm migrate` inside a transaction; never edit after it merges, add a new file instead.

CREATE TABLE jobs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name <> ''),
    task_kind       text NOT NULL CHECK (task_kind IN ('caption', 'vqa', 'ground', 'chat')),
    -- The model the job runs with: its name and, once a worker has loaded it, its weights' hash.
    model           text NOT NULL,
    -- The prompt template with <ImageHere> and {question}/{expression}; NULL means the task kind's default.
    prompt_template text,
    -- Decoding parameters (beams, max_new_tokens, length_penalty, temperature, ...), as given at enqueue time.
    generation      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(generation) = 'object'),
    cancelled_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE jobs IS 'A named batch of tasks of one kind, run with one model and one set of decoding parameters.';

CREATE TABLE tasks (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    image_uri       text NOT NULL CHECK (image_uri <> ''),
    -- Filled in by the worker that reads the image; the original size is what boxes are measured in.
    image_sha256    text CHECK (image_sha256 ~ '^[0-9a-f]{64}$'),
    image_width     integer CHECK (image_width > 0),
    image_height    integer CHECK (image_height > 0),
    -- The question (vqa, chat) or referring expression (ground); '' for captions.
    input_text      text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text,
    worker          text,
    enqueued_at     timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    -- Enqueueing the same archive into the same job twice must not duplicate work.
    UNIQUE (job_id, image_uri, input_text)
);

COMMENT ON TABLE tasks IS 'One image and its text input within a job; status, attempts and the last error live here.';

-- Progress counts per job and the worker's claim of queued tasks.
CREATE INDEX tasks_job_status ON tasks (job_id, status);
-- --skip-done looks results up by image content across jobs.
CREATE INDEX tasks_image_sha256 ON tasks (image_sha256) WHERE image_sha256 IS NOT NULL;

CREATE TABLE results (
    -- One result per task: a redelivered task finds the row and writes nothing.
    task_id           bigint PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    job_id            bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    -- The caption or answer, or for grounding the raw text the model produced.
    output_text       text NOT NULL,
    output_token_ids  integer[] NOT NULL DEFAULT '{}',
    prompt_token_count integer NOT NULL CHECK (prompt_token_count >= 0),
    output_token_count integer NOT NULL CHECK (output_token_count >= 0),
    -- Provenance: exactly what produced this row.
    model_name        text NOT NULL,
    weights_sha256    text,
    prompt            text NOT NULL,
    decoding          jsonb NOT NULL CHECK (jsonb_typeof(decoding) = 'object'),
    device            text NOT NULL,
    worker            text NOT NULL,
    -- Milliseconds per phase: {"decode_image": .., "vision": .., "prefill": .., "generate": ..}.
    timings_ms        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(timings_ms) = 'object'),
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX results_job ON results (job_id);

CREATE TABLE result_boxes (
    task_id     bigint NOT NULL REFERENCES results (task_id) ON DELETE CASCADE,
    -- The box's place in the output text, from 0; most outputs hold one.
    ordinal     integer NOT NULL CHECK (ordinal >= 0),
    -- Normalised to the original image, 0..1, as the model writes them (clamped).
    x1_norm     double precision NOT NULL CHECK (x1_norm BETWEEN 0 AND 1),
    y1_norm     double precision NOT NULL CHECK (y1_norm BETWEEN 0 AND 1),
    x2_norm     double precision NOT NULL CHECK (x2_norm BETWEEN 0 AND 1),
    y2_norm     double precision NOT NULL CHECK (y2_norm BETWEEN 0 AND 1),
    -- In pixels of the original image.
    x1          double precision NOT NULL,
    y1          double precision NOT NULL,
    x2          double precision NOT NULL,
    y2          double precision NOT NULL,
    PRIMARY KEY (task_id, ordinal)
);

COMMENT ON TABLE result_boxes IS 'Every box parsed from a grounding output; a grounding result with no row here had no box.';

-- What users query directly.

CREATE VIEW captions AS
SELECT j.name AS job, j.id AS job_id, t.id AS task_id, t.image_uri, t.image_sha256,
       r.output_text AS caption, r.model_name, r.created_at
FROM results r
JOIN tasks t ON t.id = r.task_id
JOIN jobs j ON j.id = r.job_id
WHERE j.task_kind = 'caption';

CREATE VIEW answers AS
SELECT j.name AS job, j.id AS job_id, t.id AS task_id, t.image_uri, t.image_sha256, j.task_kind,
       t.input_text AS question, r.output_text AS answer, r.model_name, r.created_at
FROM results r
JOIN tasks t ON t.id = r.task_id
JOIN jobs j ON j.id = r.job_id
WHERE j.task_kind IN ('vqa', 'chat');

-- One row per grounding result; the box columns are NULL when the output held no box (parsed = false).
CREATE VIEW boxes AS
SELECT j.name AS job, j.id AS job_id, t.id AS task_id, t.image_uri, t.image_width, t.image_height,
       t.input_text AS expression, r.output_text AS raw_output, (b.task_id IS NOT NULL) AS parsed,
       b.ordinal, b.x1, b.y1, b.x2, b.y2, b.x1_norm, b.y1_norm, b.x2_norm, b.y2_norm,
       r.model_name, r.created_at
FROM results r
JOIN tasks t ON t.id = r.task_id
JOIN jobs j ON j.id = r.job_id
LEFT JOIN result_boxes b ON b.task_id = r.task_id
WHERE j.task_kind = 'ground';
