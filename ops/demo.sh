#!/usr/bin/env bash
# The main command: on a fresh Debian 12 machine, installs what is missing, starts PostgreSQL and RabbitMQ on
# loopback, builds infmllm, migrates, makes a tiny random-weight model and runs a real job end to end: caption,
# VQA and grounding work enqueued, two workers, live progress, results printed, COCO exported, a query to try.
# The model's weights are random, so its words are nonsense; everything around them is the real system.
set -euo pipefail
cd "$(dirname "$0")/.."
source ops/lib.sh

bash ops/install-deps.sh
bash ops/services.sh start
require_swift

step "building infmllm (release)"
swift build -c release --product infmllm
infmllm="$(swift build -c release --show-bin-path)/infmllm"

step "migrating the database and checking the services"
"$infmllm" migrate
export INFMLLM_QUEUE_PREFIX=${INFMLLM_QUEUE_PREFIX:-infmllm-demo}
# The demo's queues start empty: messages of earlier runs, and queues declared by an older release with other
# arguments (which the broker would refuse to declare again), go.
rabbitmqctl -q list_queues name --no-table-headers 2>/dev/null | grep "^$INFMLLM_QUEUE_PREFIX\\." |
    while read -r queue; do rabbitmqctl -q delete_queue "$queue" </dev/null >/dev/null; done || true
"$infmllm" doctor

work=${TMPDIR:-/tmp}/infmllm-demo
mkdir -p "$work"
step "making a tiny random-weight model in $work/model"
"$infmllm" model init --preset tiny --seed 1 --out "$work/model" --force
images=Tests/ImagingTests/Fixtures/images
stamp=$(date +%Y%m%d-%H%M%S)

step "enqueueing caption, VQA and grounding jobs over $images"
captions=$("$infmllm" enqueue caption --dir "$images" --job "demo-captions-$stamp" --model "$work/model" --max-new-tokens 12)
answers=$("$infmllm" enqueue vqa --dir "$images" --include 'rgb_*' --question "What colour is the square?" \
    --job "demo-vqa-$stamp" --model "$work/model" --beams 3 --max-new-tokens 8)
boxes=$("$infmllm" enqueue ground --dir "$images" --include '*.jpg' --expression "the bright square on the left" \
    --job "demo-ground-$stamp" --model "$work/model" --max-new-tokens 16)

step "starting two workers"
pids=()
for n in 1 2; do
    "$infmllm" worker --model "$work/model" --batch-size 8 --threads 1 --name "demo-worker-$n" 2>"$work/worker-$n.log" &
    pids+=($!)
done
trap 'kill -TERM "${pids[@]}" 2>/dev/null || true; wait || true' EXIT

# With a time limit, and the workers' logs if it runs out (a worker that could not load the model, say).
for job in "$captions" "$answers" "$boxes"; do
    if ! "$infmllm" progress "$job" --interval 0.5 --timeout 600; then
        echo "demo: job $job did not finish within 10 minutes; the workers' logs:" >&2
        tail -n 20 "$work"/worker-*.log >&2
        exit 1
    fi
done
kill -TERM "${pids[@]}" 2>/dev/null || true
wait || true
trap - EXIT

step "what the jobs produced"
"$infmllm" jobs --limit 3
"$infmllm" show "$boxes"
export PGPASSWORD=${INFMLLM_DB_PASSWORD:-infmllm}
psql_demo() { psql -h 127.0.0.1 -U "${INFMLLM_DB_USER:-infmllm}" -d "${INFMLLM_DB_NAME:-infmllm}" "$@"; }
psql_demo -c "SELECT image_uri, caption, round(confidence::numeric, 4) AS confidence FROM captions
    WHERE job_id = $captions ORDER BY task_id LIMIT 5"
psql_demo -c "SELECT image_uri, question, answer FROM answers WHERE job_id = $answers ORDER BY task_id LIMIT 5"
psql_demo -c "SELECT image_uri, parsed, x1, y1, x2, y2 FROM boxes WHERE job_id = $boxes ORDER BY task_id LIMIT 5"
"$infmllm" export "$boxes" --format coco --output "$work/grounding.coco.json"
echo "COCO export of the grounding job: $work/grounding.coco.json"

cat <<TXT

Done. Try:
  $infmllm --help
  $infmllm progress $captions
  psql postgresql://infmllm:infmllm@127.0.0.1:5432/infmllm -c "SELECT job, count(*) FROM captions GROUP BY job"
TXT
