-- The Exif orientation tag of a task's image (1 to 8; 1, upright, when the image has none; NULL when it was never read,
-- as for every task read before this migration). The model sees, and boxes are on, the pixels as stored; viewers and
-- annotation tools show the image turned by its tag, and `export --exif-orientation` turns the boxes, width and height
-- the same way. The check is added NOT VALID: every existing row holds NULL, so nothing needs the table scanned under
-- its lock; new values are checked.
ALTER TABLE tasks ADD COLUMN image_orientation smallint;
ALTER TABLE tasks ADD CONSTRAINT tasks_image_orientation CHECK (image_orientation BETWEEN 1 AND 8) NOT VALID;
GRANT UPDATE (image_orientation) ON tasks TO infmllm_worker;

COMMENT ON COLUMN tasks.image_orientation IS
    'The Exif orientation tag of the image (1-8; 1 when it has none; NULL when never read); boxes are on the stored pixels (tag not applied).';

-- Boxes with the orientation of their image, for turning them in SQL (the view restated whole, the column last).
CREATE OR REPLACE VIEW boxes AS
SELECT j.name AS job, j.id AS job_id, t.id AS task_id, t.image_uri, t.image_width, t.image_height,
       t.input_text AS expression, r.output_text AS raw_output, (b.task_id IS NOT NULL) AS parsed,
       b.ordinal, b.x1, b.y1, b.x2, b.y2, b.x1_norm, b.y1_norm, b.x2_norm, b.y2_norm,
       r.model_name, r.created_at,
       t.image_sha256, r.weights_sha256, r.prompt, r.decoding, r.device, r.worker, r.reused_from,
       t.metadata, t.image_orientation
FROM results r
JOIN tasks t ON t.id = r.task_id
JOIN jobs j ON j.id = r.job_id
LEFT JOIN result_boxes b ON b.task_id = r.task_id
WHERE j.task_kind = 'ground';
