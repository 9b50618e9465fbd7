#!/usr/bin/env bash
# `infmllm enqueue` of a million images, two builds side by side: wall time and peak memory (max RSS) per source.
#
#   tools/bench/enqueue_bench.sh BASE_BINARY [NEW_BINARY]
#
# Sources: a list of TASKS [1000000] URLs; a JSONL manifest of TASKS VQA lines, each with a question and two other
# fields; the same rows as a Parquet file (`parquet`, written by pyarrow with its defaults: SNAPPY, dictionaries; the
# Python of tools/parquet_readers.sh, or PARQUET_PYTHON), read from disk, or served by nginx on loopback
# (`parquet-url`, read by range requests); a directory tree of FILES [200000] empty .jpg files in folders of 1,000.
# SOURCES [urls manifest dir] chooses them, SIDES [base new] the builds (SIDES=new for one build's sources side by
# side). Each build enqueues each source
# into a database of its own on the local server (`ops/services.sh start`) and a queue prefix of its own, then the
# same source again (which adds nothing); the databases and queues are dropped at the end. NEW_BINARY defaults to the
# release build of this tree. No worker runs: the figures are listing, validating, inserting and publishing with
# confirms. Run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=lib.sh
source tools/bench/lib.sh
binaries "$@"
tasks=${TASKS:-1000000}
files=${FILES:-200000}
sources=${SOURCES:-urls manifest dir}
work=$(mktemp -d)
export PGPASSWORD=infmllm
databases=()
prefixes=()
cleanup() {
    for database in "${databases[@]}"; do
        drop_database "$database"
    done
    # (Each step may fail, as drop_queues does when a queue is gone already: the rest still runs.)
    for prefix in "${prefixes[@]}"; do drop_queues "$prefix" || true; done
    if [[ -f $work/nginx.pid ]]; then kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

python3 - "$work" "$tasks" "$files" <<'PY'
import os, sys
work, tasks, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(f"{work}/urls.txt", "w") as out:
    for n in range(tasks):
        out.write(f"https://images.example.org/archive/{n // 1000:05d}/{n:09d}.jpg\n")
with open(f"{work}/manifest.jsonl", "w") as out:
    for n in range(tasks):
        out.write(f'{{"image": "https://images.example.org/archive/{n // 1000:05d}/{n:09d}.jpg", '
                  f'"question": "What is in the picture number {n}?", "id": {n}, "source": "bench"}}\n')
for n in range(files):
    folder = f"{work}/tree/{n // 1000:04d}"
    if n % 1000 == 0:
        os.makedirs(folder)
    open(f"{folder}/{n:08d}.jpg", "w").close()
PY
if [[ " $sources " == *" parquet"* ]]; then
    "${PARQUET_PYTHON:-$(tools/parquet_readers.sh)}" - "$work" <<'PY'
import sys
import pyarrow.json, pyarrow.parquet
work = sys.argv[1]
pyarrow.parquet.write_table(pyarrow.json.read_json(f"{work}/manifest.jsonl"), f"{work}/manifest.parquet")
PY
fi
if [[ " $sources " == *" parquet-url "* ]]; then
    start_nginx "$work"
    ln "$work/manifest.parquet" "$work/www/manifest.parquet"
fi

echo "enqueue: $tasks URLs, $tasks manifest lines, $files files ($(date -u +%FT%TZ)," \
    "$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs)"
printf '%-10s %-5s %-7s %10s %14s %10s\n' source build run seconds "peak RSS MiB" added
for source in $sources; do
    for side in ${SIDES:-base new}; do
        binary=$base
        [[ $side == new ]] && binary=$new
        database=infmllm_enqueue_bench_${side}_${source//-/_}_$$
        prefix=enqueue-bench-$side-$source-$$
        databases+=("$database")
        prefixes+=("$prefix")
        psql -q -h 127.0.0.1 -U infmllm -d infmllm -c "CREATE DATABASE $database"
        export INFMLLM_DATABASE_URL=postgresql://infmllm:infmllm@127.0.0.1:5432/$database
        export INFMLLM_QUEUE_PREFIX=$prefix
        "$binary" migrate >/dev/null
        case $source in
        urls) arguments=(caption --urls "$work/urls.txt") ;;
        manifest) arguments=(vqa --manifest "$work/manifest.jsonl") ;;
        parquet) arguments=(vqa --manifest "$work/manifest.parquet") ;;
        parquet-url) arguments=(vqa --manifest "http://127.0.0.1:$port/manifest.parquet") ;;
        dir) arguments=(caption --dir "$work/tree") ;;
        esac
        for run in first again; do
            /usr/bin/time -f '%e %M' -o "$work/time" "$binary" enqueue "${arguments[@]}" --job bench --model bench \
                --json >"$work/out.json" 2>"$work/stderr" || { cat "$work/stderr"; exit 1; }
            read -r seconds kib <"$work/time"
            added=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["added"])' "$work/out.json")
            printf '%-10s %-5s %-7s %10s %14s %10s\n' "$source" "$side" "$run" "$seconds" $((kib / 1024)) "$added"
        done
        drop_database "$database"
        drop_queues "$prefix"
    done
done
