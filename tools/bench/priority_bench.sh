#!/usr/bin/env bash
# How long an urgent job waits behind a long one: a background job of BACKGROUND images runs on one worker; once a
# tenth of it is done, an urgent job of URGENT images is enqueued, first in the same (normal) lane, then, in a second
# run, with --priority high. Reports the seconds from enqueueing the urgent job to its end, and how many background
# tasks ended meanwhile. The tiny model with NEW_TOKENS new tokens a task (so a task takes a few milliseconds).
#
#   tools/bench/priority_bench.sh [BACKGROUND=3000] [URGENT=40]
#
# Environment: BIN (a built binary instead of this tree's release build), NEW_TOKENS [24]. Needs the local services
# (`ops/services.sh start`); its jobs are deleted at the end. Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=lib.sh
source tools/bench/lib.sh
background=${1:-3000}
urgent=${2:-40}
tokens=${NEW_TOKENS:-24}
bin=${BIN:-$(release_build)}
work=$(mktemp -d)
export INFMLLM_QUEUE_PREFIX=priority-bench-$$
database=${INFMLLM_DATABASE_URL:-postgresql://infmllm:infmllm@127.0.0.1:5432/infmllm}
cleanup() {
    kill -TERM "${worker:-0}" 2>/dev/null || true
    wait 2>/dev/null || true
    for job in $(psql "$database" -tAc "SELECT name FROM jobs WHERE name LIKE 'priority-bench-$$-%'"); do
        "$bin" delete "$job" >/dev/null 2>&1 || true
    done
    drop_queues "$INFMLLM_QUEUE_PREFIX"
    rm -rf "$work"
}
trap cleanup EXIT
"$bin" model init --preset tiny --seed 1 --out "$work/tiny" >/dev/null
mkdir -p "$work/background" "$work/urgent"
for ((i = 0; i < background; i++)); do ln -s "$PWD/Tests/ImagingTests/Fixtures/images/rgb_64x64.png" "$work/background/$i.png"; done
for ((i = 0; i < urgent; i++)); do ln -s "$PWD/Tests/ImagingTests/Fixtures/images/gray_64x48.jpg" "$work/urgent/$i.jpg"; done
done_count() { psql "$database" -tAc "SELECT coalesce(sum(tasks), 0) FROM job_progress WHERE job = '$1' AND status = 'done'"; }
now() { date +%s.%N; }

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $(date -u +%FT%TZ);" \
    "background $background tasks, urgent $urgent, $tokens new tokens a task, 1 worker"
echo "| urgent job's priority | seconds until the urgent job ends | background tasks ended meanwhile |"
echo "|---|---|---|"
for priority in normal high; do
    run=priority-bench-$$-$priority
    "$bin" enqueue caption --dir "$work/background" --job "$run-background" --model tiny --max-new-tokens "$tokens" \
        --min-new-tokens "$tokens" >/dev/null 2>&1
    "$bin" worker --model "$work/tiny" --batch-size 16 --threads 1 --name "priority-bench" 2>/dev/null &
    worker=$!
    until (($(done_count "$run-background") >= background / 10)); do sleep 0.05; done
    before=$(done_count "$run-background")
    t0=$(now)
    "$bin" enqueue caption --dir "$work/urgent" --job "$run-urgent" --model tiny --max-new-tokens "$tokens" \
        --min-new-tokens "$tokens" --priority "$priority" >/dev/null 2>&1
    "$bin" progress "$run-urgent" --interval 0.05 >/dev/null
    t1=$(now)
    after=$(done_count "$run-background")
    kill -TERM "$worker"
    wait "$worker" || true
    python3 -c "print(f'| $priority | {$t1 - $t0:.2f} | {$after - $before} of {$background - $before} left |')"
done
