#!/usr/bin/env bash
# What `progress` and `jobs` cost the database on large jobs, two builds side by side: the wall time of `infmllm jobs
# --json` (every job's counts by state, what `progress` reads every second) on jobs of TASKS [3000000], a third of
# that, and a thousand tasks, a third of each queued and the rest done, running and failed.
#
#   tools/bench/progress_bench.sh BASE_BINARY [NEW_BINARY]
#
# The jobs are written with generate_series into a database of its own on the local server (`ops/services.sh
# start`), migrated by NEW_BINARY (default: the release build of this tree); both builds read the same database,
# first as written (a worker's recent writes leave pages unvacuumed) and then after VACUUM ANALYZE. ROUNDS [5] runs
# each, the median printed. The database is dropped at the end. Run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=lib.sh
source tools/bench/lib.sh
binaries "$@"
tasks=${TASKS:-3000000}
rounds=${ROUNDS:-5}
database=infmllm_progress_bench_$$
export PGPASSWORD=infmllm
export INFMLLM_DATABASE_URL=postgresql://infmllm:infmllm@127.0.0.1:5432/$database
sql() { psql -q -h 127.0.0.1 -U infmllm -d "$database" -tAc "$1"; }
timing=$(mktemp)
cleanup() {
    rm -f "$timing"
    drop_database "$database"
}
trap cleanup EXIT
psql -q -h 127.0.0.1 -U infmllm -d infmllm -c "CREATE DATABASE $database"
"$new" migrate >/dev/null
for size in "$tasks" $((tasks / 3)) 1000; do
    sql "
    INSERT INTO jobs (name, task_kind, model) VALUES ('job-$size', 'caption', 'bench');
    INSERT INTO tasks (job_id, image_uri, status, attempts, finished_at, published_at)
    SELECT j.id, 'https://images.example.org/' || n || '.jpg',
           CASE WHEN n % 3 = 0 THEN 'queued' WHEN n % 1000 = 1 THEN 'running' WHEN n % 500 = 2 THEN 'failed'
                ELSE 'done' END, 1, CASE WHEN n % 3 <> 0 THEN now() END, now()
    FROM jobs j, generate_series(1, $size) n WHERE j.name = 'job-$size';"
done
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "jobs --json on jobs of $tasks, $((tasks / 3)) and 1000 tasks ($(date -u +%FT%TZ)," \
    "$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs), median of $rounds runs"
printf '%-16s %-5s %10s\n' database build seconds
for state in "as written" vacuumed; do
    [[ $state == vacuumed ]] && sql "VACUUM ANALYZE tasks" && sql "VACUUM ANALYZE task_counts"
    for side in base new; do
        binary=$base
        [[ $side == new ]] && binary=$new
        "$binary" jobs --json >/dev/null  # once to warm the caches
        for ((i = 0; i < rounds; i++)); do
            /usr/bin/time -f '%e' -o "$timing" "$binary" jobs --json >/dev/null
            cat "$timing"
        done | median | xargs printf '%-16s %-5s %10s\n' "$state" "$side"
    done
done
