-- --skip-done across sources: a job enqueued with it reuses the result of any earlier task whose image has the same
-- content (SHA-256), the same text input, and the same model weights, task kind, prompt template and decoding
-- parameters, instead of running the model again. Workers decide once they have read the image, since a URL's or
-- an archive member's content is known only then.
ALTER TABLE jobs ADD COLUMN reuse_results boolean NOT NULL DEFAULT false;

-- The task whose result this one copies, when it was reused rather than computed.
ALTER TABLE results ADD COLUMN reused_from bigint REFERENCES tasks (id) ON DELETE SET NULL;

COMMENT ON COLUMN jobs.reuse_results IS 'Reuse an earlier result for the same image content, input, weights and settings (enqueue --skip-done).';
COMMENT ON COLUMN results.reused_from IS 'The task whose result was copied (--skip-done by content); NULL when the model computed it.';
