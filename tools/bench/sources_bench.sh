#!/usr/bin/env bash
# Images read and decoded per second from each source a worker reads: local files, URLs on a local HTTP server
# (Debian's nginx on loopback), tar shards and a zip, and the members of that tar shard and zip on that server (one
# range request each), with one and with two worker processes at once.
#
#   tools/bench/sources_bench.sh [COUNT]     (default 400 images: copies of the JPEG fixtures, 5x7 to 1200x900)
#
# Environment: THREADS [2] (decoding threads per process), FETCH_THREADS [8] (for URLs), PASSES [3].
# Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=lib.sh
source tools/bench/lib.sh
count=${1:-400}
threads=${THREADS:-2}
fetch_threads=${FETCH_THREADS:-8}
passes=${PASSES:-3}
bin=$(release_build)
work=$(mktemp -d)
trap 'kill "$(cat "$work/nginx.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www/images" "$work/logs" "$work/temp"
fixtures=(Tests/ImagingTests/Fixtures/images/*.jpg)
for ((i = 0; i < count; i++)); do
    cp "${fixtures[i % ${#fixtures[@]}]}" "$work/www/images/$(printf %05d "$i").jpg"
done
start_nginx "$work"
(cd "$work/www" && tar -cf "$work/shard-0.tar" images && zip -q -r -0 "$work/shard-1.zip" images)
ls "$work/www/images" | sed "s|^|$work/www/images/|" >"$work/files.txt"
ls "$work/www/images" | sed "s|^|http://127.0.0.1:$port/images/|" >"$work/urls.txt"
ls "$work/www/images" | sed "s|^|tar:$work/shard-0.tar!/images/|" >"$work/tar.txt"
ls "$work/www/images" | sed "s|^|zip:$work/shard-1.zip!/images/|" >"$work/zip.txt"
mkdir -p "$work/www/shards" && cp "$work/shard-0.tar" "$work/shard-1.zip" "$work/www/shards/"
python3 - "$work/shard-0.tar" "http://127.0.0.1:$port/shards/shard-0.tar" >"$work/remote-tar.txt" <<'PY'
import sys, tarfile
for member in tarfile.open(sys.argv[1]):
    if member.isfile():
        print(f"tar:{sys.argv[2]}#offset={member.offset_data}&size={member.size}!/{member.name}")
PY
python3 - "$work/shard-1.zip" "http://127.0.0.1:$port/shards/shard-1.zip" >"$work/remote-zip.txt" <<'PY'
import sys, zipfile
for member in zipfile.ZipFile(sys.argv[1]).infolist():
    if not member.is_dir():
        print(f"zip:{sys.argv[2]}#header={member.header_offset}&packed={member.compress_size}"
              f"&size={member.file_size}&crc={member.CRC:x}!/{member.filename}")
PY

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $(date -u +%F); $count images, $passes passes"
echo "| source | 1 worker, images/s | 2 workers, images/s (sum) |"
echo "|---|---|---|"
for source in files urls tar zip remote-tar remote-zip; do
    t=$threads
    [[ $source == urls || $source == remote-* ]] && t=$fetch_threads
    run() { "$bin" bench images --uris "$work/$source.txt" --threads "$t" --passes "$passes" --decode-only; }
    failures=$(run | python3 -c 'import json, sys; print(json.load(sys.stdin)["failures"])')
    [[ $failures == 0 ]] || { echo "$source: $failures images failed" >&2; exit 1; }
    one=$(run | python3 -c 'import json, sys; print(round(json.load(sys.stdin)["imagesPerSecond"]))')
    run >"$work/a.json" &
    run >"$work/b.json"
    wait
    two=$(python3 -c "import json; print(round(sum(json.load(open(f))['imagesPerSecond'] for f in ['$work/a.json', '$work/b.json'])))")
    echo "| $source | $one | $two |"
done
