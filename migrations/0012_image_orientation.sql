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
