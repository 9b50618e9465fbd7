#!/usr/bin/env bash
# Listing shards for `enqueue`: local tar shards (mapped and indexed) beside the same shards served over HTTP by
# Debian's nginx on loopback (each read as it streams past, its headers kept), and the same images as stored zip
# files, local and served (their central directories read with range requests), as `enqueue --dry-run` does it: the
# listing plus the inserts of one transaction that is rolled back, so the difference is the listing.
#
#   tools/bench/shard_listing_bench.sh [SHARDS] [IMAGES]   (default 20 shards of 1,000 images: copies of the JPEG
#                                                          fixtures, 5x7 to 1200x900)
#
# Needs the local services (`ops/services.sh start`); nothing stays in the database. Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=lib.sh
source tools/bench/lib.sh
shards=${1:-20}
images=${2:-1000}
bin=$(release_build)
work=$(mktemp -d)
trap 'kill "$(cat "$work/nginx.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/images" "$work/www/shards" "$work/logs" "$work/temp"
fixtures=(Tests/ImagingTests/Fixtures/images/*.jpg)
for ((i = 0; i < images; i++)); do
    cp "${fixtures[i % ${#fixtures[@]}]}" "$work/images/$(printf %05d "$i").jpg"
done
for ((s = 0; s < shards; s++)); do
    (cd "$work" && tar -cf "www/shards/$(printf %05d "$s").tar" images && zip -q -r -0 "www/shards/$(printf %05d "$s").zip" images)
done
start_nginx "$work"
last=$(printf %05d $((shards - 1)))
bytes=$(du -cb "$work"/www/shards/*.tar | tail -1 | cut -f1)
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $(date -u +%FT%TZ);" \
    "$shards shards of $images images, $((bytes >> 20)) MiB"
echo "| shards | seconds | members/s | MiB/s of shard |"
echo "|---|---|---|---|"
for source in local remote "local zip" "remote zip"; do
    archive="$work/www/shards/*.tar"
    [[ $source == remote ]] && archive="http://127.0.0.1:$port/shards/{00000..$last}.tar"
    [[ $source == "local zip" ]] && archive="$work/www/shards/*.zip"
    [[ $source == "remote zip" ]] && archive="http://127.0.0.1:$port/shards/{00000..$last}.zip"
    for run in 1 2 3; do
        start=$(date +%s.%N)
        "$bin" enqueue caption --archive "$archive" --job "shard-listing-bench-$$" --model bench --dry-run --json \
            >"$work/out.json"
        end=$(date +%s.%N)
        python3 - "$work/out.json" "$start" "$end" "$bytes" "$source" <<'PY'
import json, sys
out = json.load(open(sys.argv[1]))
seconds = float(sys.argv[3]) - float(sys.argv[2])
print(f"| {sys.argv[5]} | {seconds:.2f} | {out['found'] / seconds:,.0f} | {int(sys.argv[4]) / seconds / 2**20:,.0f} |")
PY
    done
done
