#!/usr/bin/env bash
# The job system's own overhead, with the tiny model (so the model is not what sets the pace):
#   enqueue rate (tasks/s, one manifest, publisher confirms) and end-to-end tasks/s with 1 and 2 workers.
#   tools/bench/pipeline_bench.sh [enqueue_tasks=20000] [run_tasks=2000]
# BIN: a built binary to measure instead of this tree's release build; INFMLLM_DATABASE_URL: another database.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=lib.sh
source tools/bench/lib.sh
enqueue_tasks=${1:-20000}; run_tasks=${2:-2000}
bin=${BIN:-$(release_build)}
work=$(mktemp -d)
export INFMLLM_QUEUE_PREFIX=bench-$$
# The run's queues (every lane of the model, its dead letters, the rejected queue) go with it.
trap 'drop_queues "$INFMLLM_QUEUE_PREFIX"; rm -rf "$work"' EXIT
# The folder is named after the model key that `--model tiny` routes by.
"$bin" model init --preset tiny --seed 1 --out "$work/tiny" >/dev/null
mkdir -p "$work/img"
for ((i = 0; i < run_tasks; i++)); do ln -s "$PWD/Tests/ImagingTests/Fixtures/images/rgb_64x64.png" "$work/img/$i.png"; done
python3 -c "import json,sys; [print(json.dumps({'image': f'/nonexistent/{i}.jpg'})) for i in range(int(sys.argv[1]))]" "$enqueue_tasks" >"$work/m.jsonl"

now() { date +%s.%N; }
t0=$(now); "$bin" enqueue caption --manifest "$work/m.jsonl" --job "bench-enqueue-$$" --model tiny >/dev/null 2>&1; t1=$(now)
python3 -c "print(f'enqueue: {int($enqueue_tasks)} tasks in {$t1-$t0:.2f} s = {$enqueue_tasks/($t1-$t0):,.0f} tasks/s (manifest read, bulk INSERT, publish with confirms)')"
"$bin" cancel "bench-enqueue-$$" >/dev/null
python3 - "$INFMLLM_QUEUE_PREFIX" <<'PY'
import subprocess, sys
subprocess.run(["rabbitmqctl", "-q", "purge_queue", sys.argv[1] + ".model.tiny"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
PY

for workers in 1 2; do
    job="bench-run-$$-$workers"
    "$bin" enqueue caption --dir "$work/img" --job "$job" --model tiny --max-new-tokens 1 >/dev/null 2>&1
    t0=$(now)
    pids=()
    for ((w = 0; w < workers; w++)); do
        "$bin" worker --model "$work/tiny" --batch-size 16 --threads 1 --name "bench-$w" 2>/dev/null & pids+=($!)
    done
    "$bin" progress "$job" --interval 0.1 >/dev/null
    t1=$(now)
    kill -TERM "${pids[@]}"; wait || true
    model_ms=$(psql "${INFMLLM_DATABASE_URL:-postgresql://infmllm:infmllm@127.0.0.1:5432/infmllm}" -tAc \
        "SELECT round(avg((timings_ms->>'vision')::float + (timings_ms->>'generate')::float)::numeric / 16, 3) FROM results r JOIN jobs j ON j.id = r.job_id WHERE j.name = '$job'")
    python3 -c "
wall = $t1 - $t0; n = $run_tasks
print(f'{$workers} worker(s): {n} tasks in {wall:.2f} s = {n / wall:,.0f} tasks/s end to end ({wall / n * 1000:.2f} ms/task wall incl. worker start; model ~{float(\"$model_ms\" or 0):.2f} ms/task)')"
done
