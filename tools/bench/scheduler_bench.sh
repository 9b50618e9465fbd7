#!/usr/bin/env bash
# The worker's scheduler against the worker before it (static batches), each through the real RabbitMQ and
# PostgreSQL, one worker at a time on an otherwise quiet machine:
#   ground  a grounding-annotation job on the 7b preset in bf16: 20 images, 8 expressions each (tasks per hour)
#   mixed   a mixed job on the slice preset: half VQA with 1-4 new tokens, half captions with 8-48 (tokens per second,
#           and how long a VQA task takes from its start to its result); the static worker on the queue as it comes
#           and on the same tasks sorted by setting (its best case: every batch uniform)
#   cache   a second VQA job over the first job's images with the embedding cache on, in a fresh worker (7b)
#
#   tools/bench/scheduler_bench.sh BASE_BINARY [ground] [mixed] [cache]
#
# BASE_BINARY is `infmllm` built from the commit before the scheduler (git worktree add ../base 042ca9b; swift build
# -c release --product infmllm there). Environment: THREADS [2], BATCH [8], GROUND_TOKENS [24], GROUND_IMAGES [20],
# SIDES [base new: the workers the ground scenario runs; the base side takes over an hour on two cores], NEW_FLAGS
# [more flags for the new worker in the ground and mixed scenarios, --step-tokens 512 say], NEW_BINARY [the release
# build of this tree; another build of the scheduler, to run two of them beside one static run], MIXED_SIDES
# [base-mixed base-sorted new-mixed], OUT [a temporary folder; the 7b and slice checkpoints are written there unless
# MODEL_7B / MODEL_SLICE name them].
set -euo pipefail
cd "$(dirname "$0")/../.."
base=$1
shift
scenarios=${*:-ground mixed cache}
threads=${THREADS:-2}
batch=${BATCH:-8}
if [[ -n ${NEW_BINARY:-} ]]; then
    new=$NEW_BINARY
else
    swift build -c release --product infmllm >/dev/null
    new=$(swift build -c release --show-bin-path)/infmllm
fi
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
export PGPASSWORD=infmllm
sql() { psql -h 127.0.0.1 -U infmllm -d infmllm -tAc "$1"; }
"$new" migrate >/dev/null
images=()
for f in Tests/ImagingTests/Fixtures/images/*; do
    [[ $f =~ _[0-9]+x[0-9]+\.(jpg|png)$ ]] && images+=("$PWD/$f")
done

model() { # preset → a checkpoint directory named after it (its queue's key)
    local preset=$1 variable=MODEL_${1^^}
    local directory=${!variable:-$out/$preset}
    [[ -f $directory/config.json ]] || "$new" model init --preset "$preset" --dtype bf16 --seed 1 --out "$directory" >/dev/null
    echo "$directory"
}

# run LABEL BINARY MODEL JOBS... -- WORKER FLAGS: starts a worker of BINARY on the queue prefix LABEL, waits until
# every task of JOBS has ended, stops it, and prints the jobs' span (first start to last result) in seconds.
run() {
    local label=$1 binary=$2 model=$3
    shift 3
    local jobs=() flags=()
    while [[ $1 != -- ]]; do jobs+=("$1"); shift; done
    shift
    flags=("$@")
    INFMLLM_QUEUE_PREFIX=$label "$binary" worker --model "$model" --batch-size "$batch" --threads "$threads" \
        --name "$label" "${flags[@]}" 2>"$out/$label.log" &
    local pid=$!
    local names
    names=$(printf "'%s'," "${jobs[@]}")
    wait_for "${names%,}" "$pid" "$out/$label.log"
    kill -TERM "$pid"
    wait "$pid" || true
    # The run's queues go with it: every quorum queue left in the broker holds file handles it counts against the
    # connections' budget.
    rabbitmqctl -q list_queues name </dev/null 2>/dev/null | grep -F "$label." | while read -r queue; do
        rabbitmqctl -q delete_queue "$queue" </dev/null >/dev/null 2>&1 || true
    done
    sql "SELECT round(extract(epoch FROM max(t.finished_at) - min(t.started_at))::numeric, 1)
         FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE j.name IN (${names%,})"
}

# wait_for "'JOB',..." PID LOG: until no task of the jobs is queued or running; fails if the worker PID dies first.
wait_for() {
    while [[ $(sql "SELECT count(*) FROM tasks t JOIN jobs j ON j.id = t.job_id
                    WHERE j.name IN ($1) AND t.status IN ('queued', 'running')") != 0 ]]; do
        if ! kill -0 "$2" 2>/dev/null; then
            echo "the worker stopped before the job ended; its log ($3):" >&2
            tail -20 "$3" >&2
            exit 1
        fi
        sleep 2
    done
}

tokens() { # JOBS...: generated tokens
    local names
    names=$(printf "'%s'," "$@")
    sql "SELECT sum(r.output_token_count) FROM results r JOIN jobs j ON j.id = r.job_id WHERE j.name IN (${names%,})"
}

stamp=$(date +%s)

if [[ " $scenarios " == *" ground "* ]]; then
    m7b=$(model 7b)
    expressions=("the man on the left" "the red car" "a dog near the door" "the tallest building" "the woman in blue"
        "the sign above the shop" "the second bicycle from the right" "the cup on the table")
    ground_images=${GROUND_IMAGES:-20}
    for ((i = 0; i < ground_images; i++)); do
        for expression in "${expressions[@]}"; do
            printf '{"image": "%s", "expression": "%s"}\n' "${images[i]}" "$expression"
        done
    done >"$out/ground.jsonl"
    for side in ${SIDES:-base new}; do
        binary=$base
        [[ $side == new ]] && binary=$new
        job=ground-$side-$stamp
        INFMLLM_QUEUE_PREFIX=bench-$job "$binary" enqueue ground --manifest "$out/ground.jsonl" --job "$job" \
            --model "$m7b" --max-new-tokens "${GROUND_TOKENS:-24}" --min-new-tokens "${GROUND_TOKENS:-24}" >/dev/null
        flags=()
        [[ $side == new ]] && read -ra flags <<<"${NEW_FLAGS:-}"
        span=$(run "bench-$job" "$binary" "$m7b" "$job" -- "${flags[@]}")
        tasks=$((ground_images * 8))
        python3 -c "print(f'ground, $side worker ${flags[*]}: $tasks tasks in $span s = {$tasks * 3600 / $span:.0f} tasks/hour')"
    done
fi

if [[ " $scenarios " == *" mixed "* ]]; then
    slice=$(model slice)
    # 128 distinct images (gradients and noise, PNG written with Python's zlib), so that no two tasks share an image:
    # this measures batching alone.
    python3 - "$out/mixed-images" <<'PY'
import os, random, struct, sys, zlib
folder = sys.argv[1]
os.makedirs(folder, exist_ok=True)
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
for index in range(128):
    rng = random.Random(index)
    width, height = 96 + index % 7 * 8, 72 + index % 5 * 8
    rows = b"".join(b"\0" + bytes((x * 3 + index * 17 + rng.randrange(40)) % 256 if c == 0 else
                                  (y * 2 + rng.randrange(60)) % 256 if c == 1 else (x + y + index) % 256
                                  for x in range(width) for c in range(3)) for y in range(height))
    with open(os.path.join(folder, f"{index:03d}.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
    mixed_images=("$out"/mixed-images/*.png)
    vqa=(1 2 3 4) captions=(8 16 32 48)
    enqueue_mixed() { # BINARY PREFIX SUFFIX ORDER(mixed|sorted)
        local binary=$1 prefix=$2 suffix=$3 order=$4 i
        local lines=()
        for ((i = 0; i < 64; i++)); do
            lines+=("vqa ${vqa[i % 4]} ${mixed_images[2 * i]}" "caption ${captions[i % 4]} ${mixed_images[2 * i + 1]}")
        done
        if [[ $order == sorted ]]; then mapfile -t lines < <(printf '%s\n' "${lines[@]}" | sort -k1,1 -k2,2n); fi
        for line in "${lines[@]}"; do
            read -r kind count image <<<"$line"
            INFMLLM_QUEUE_PREFIX=$prefix "$binary" enqueue "$kind" "$image" --question "What is it?" \
                --job "mixed-$kind-$count-$suffix" --model "$slice" --max-new-tokens "$count" \
                --min-new-tokens "$count" >/dev/null 2>&1
        done
    }
    for side in ${MIXED_SIDES:-base-mixed base-sorted new-mixed}; do
        binary=$base
        [[ $side == new-* ]] && binary=$new
        suffix=$side-$stamp
        enqueue_mixed "$binary" "bench-$suffix" "$suffix" "${side#*-}"
        jobs=()
        for count in "${vqa[@]}"; do jobs+=("mixed-vqa-$count-$suffix"); done
        for count in "${captions[@]}"; do jobs+=("mixed-caption-$count-$suffix"); done
        flags=()
        [[ $side == new-* ]] && read -ra flags <<<"${NEW_FLAGS:-}"
        span=$(run "bench-$suffix" "$binary" "$slice" "${jobs[@]}" -- "${flags[@]}")
        generated=$(tokens "${jobs[@]}")
        latency=$(sql "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.finished_at - t.started_at))::numeric, 2) || ' s median, ' || round(max(extract(epoch FROM t.finished_at - t.started_at))::numeric, 2) || ' s max'
            FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE j.name LIKE 'mixed-vqa-%-$suffix'")
        python3 -c "print(f'mixed, $side ${flags[*]}: 128 tasks, $generated tokens in $span s = {$generated / $span:.1f} tokens/s; a VQA task from its start to its result: $latency')"
    done
fi

if [[ " $scenarios " == *" cache "* ]]; then
    m7b=$(model 7b)
    cache=$out/embedding-cache-$stamp
    for ((i = 0; i < 20; i++)); do printf '%s\n' "${images[i + 20]}"; done >"$out/cache-images.txt"
    port=$((20000 + RANDOM % 20000))
    for question in "What is in the picture?" "What colour is it?"; do
        job=cache-$stamp-${#question}
        INFMLLM_QUEUE_PREFIX=bench-cache-$stamp "$new" enqueue vqa --urls "$out/cache-images.txt" --question "$question" \
            --job "$job" --model "$m7b" --max-new-tokens 4 --min-new-tokens 4 >/dev/null
        # A fresh worker for each job: only the embedding cache carries over, not prefixes in memory.
        INFMLLM_QUEUE_PREFIX=bench-cache-$stamp "$new" worker --model "$m7b" --batch-size "$batch" --threads "$threads" \
            --name "cache-$job" --embedding-cache "$cache" --metrics-address "127.0.0.1:$port" 2>"$out/$job.log" &
        pid=$!
        wait_for "'$job'" "$pid" "$out/$job.log"
        hits=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^infmllm_embedding_cache_total\{result="hit"\}/ {print $2}')
        misses=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^infmllm_embedding_cache_total\{result="miss"\}/ {print $2}')
        encoded=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^infmllm_vision_images_total/ {print $2}')
        kill -TERM "$pid"
        wait "$pid" || true
        span=$(sql "SELECT round(extract(epoch FROM max(t.finished_at) - min(t.started_at))::numeric, 1) FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE j.name = '$job'")
        echo "cache, \"$question\": 20 tasks in $span s; embedding cache hits ${hits:-0}, misses ${misses:-0}; images through the vision encoder ${encoded:-0}"
    done
fi
