-- Beam search follows transformers 4.31's rules unless a job's settings say `"beam_rules": "transformers-5"`, and
-- settings without the key mean 4.31. Every beam-search job and result stored before the key existed was decoded
-- with 5.x's rules: saying so keeps a job that is half done on the rules it started with, keeps `--skip-done` from
-- pairing those results with 4.31 jobs, and lets `enqueue --job` add to such a job with `--beam-rules transformers-5`.
UPDATE jobs SET generation = generation || '{"beam_rules": "transformers-5"}'::jsonb
WHERE CASE WHEN jsonb_typeof(generation -> 'num_beams') = 'number' THEN (generation ->> 'num_beams')::numeric > 1 END
  AND NOT generation ? 'beam_rules';

UPDATE results SET decoding = decoding || '{"beam_rules": "transformers-5"}'::jsonb
WHERE CASE WHEN jsonb_typeof(decoding -> 'num_beams') = 'number' THEN (decoding ->> 'num_beams')::numeric > 1 END
  AND NOT decoding ? 'beam_rules';
