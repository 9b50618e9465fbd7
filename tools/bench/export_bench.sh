#!/usr/bin/env bash
# `infmllm export` of a large caption job, two builds side by side: wall time and peak memory (max RSS) per format.
#
#   tools/bench/export_bench.sh BASE_BINARY [NEW_BINARY]
#
# The job (TASKS tasks [1000000], each done with a 60-character caption, its image a member of one of TASKS/1000
# tar shards) is written with generate_series into a database of its own on the local server (`ops/services.sh
# start`), exported by each binary in each of FORMATS [jsonl csv coco shard-jsonl], and the database dropped at the
# end. NEW_BINARY defaults to the release build of this tree. Run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=lib.sh
source tools/bench/lib.sh
binaries "$@"
tasks=${TASKS:-1000000}
formats=${FORMATS:-jsonl csv coco shard-jsonl}
job=export-bench
database=infmllm_export_bench_$$
out=$(mktemp -d)
export PGPASSWORD=infmllm
export INFMLLM_DATABASE_URL=postgresql://infmllm:infmllm@127.0.0.1:5432/$database
sql() { psql -q -h 127.0.0.1 -U infmllm -d "$database" -tAc "$1"; }
cleanup() {
    drop_database "$database"
    rm -rf "$out"
}
trap cleanup EXIT
psql -q -h 127.0.0.1 -U infmllm -d infmllm -c "CREATE DATABASE $database"
"$new" migrate >/dev/null
sql "
INSERT INTO jobs (name, task_kind, model) VALUES ('$job', 'caption', 'bench');
INSERT INTO tasks (job_id, image_uri, status, attempts, finished_at, published_at, image_width, image_height)
SELECT j.id, format('tar:/data/shards/s-%s.tar!/%s.jpg', lpad((n / 1000)::text, 5, '0'), lpad(n::text, 9, '0')),
       'done', 1, now(), now(), 640, 480
FROM jobs j, generate_series(1, $tasks) n WHERE j.name = '$job';
INSERT INTO results (task_id, job_id, output_text, prompt_token_count, output_token_count, model_name, prompt,
                     decoding, device, worker)
SELECT t.id, t.job_id, 'a photograph of a small dog sitting on a wooden bench in a park', 12, 14, 'bench',
       'p', '{}', 'cpu bf16', 'w'
FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE j.name = '$job';
ANALYZE tasks; ANALYZE results;"
echo "export of $tasks tasks ($(date -u +%FT%TZ), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs)"
printf '%-12s %-5s %10s %14s %12s\n' format build seconds "peak RSS MiB" "output MiB"
for format in $formats; do
    for side in base new; do
        binary=$base
        [[ $side == new ]] && binary=$new
        target=$out/$side-$format
        rm -rf "$target"
        /usr/bin/time -f '%e %M' -o "$out/time" "$binary" export "$job" --format "$format" --output "$target" \
            2>"$out/stderr" >/dev/null || { cat "$out/stderr"; exit 1; }
        read -r seconds kib <"$out/time"
        size=$(du -sm "$target" | cut -f1)
        printf '%-12s %-5s %10s %14s %12s\n' "$format" "$side" "$seconds" $((kib / 1024)) "$size"
    done
    if ! diff -rq "$out/base-$format" "$out/new-$format" >/dev/null; then
        echo "  ($format: the two outputs differ)"
    fi
done
