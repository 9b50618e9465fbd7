-- The Exif orientation tag of a task's image (1 to 8; NULL when it has none, or the image was never read). The model
-- sees, and boxes are on, the pixels as stored; viewers and annotation tools show the image turned by its tag, and
-- `export --exif-orientation` turns the boxes, width and height the same way.
ALTER TABLE tasks ADD COLUMN image_orientation smallint CHECK (image_orientation BETWEEN 1 AND 8);
GRANT UPDATE (image_orientation) ON tasks TO infmllm_worker;

COMMENT ON COLUMN tasks.image_orientation IS
    'The Exif orientation tag of the image (1-8), NULL when it has none; boxes are on the stored pixels (tag not applied).';
