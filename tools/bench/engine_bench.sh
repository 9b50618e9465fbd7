#!/usr/bin/env bash
# CPU caption throughput of the engine on the `bench` preset: N images captioned in batches, greedy, 20 new tokens.
#   tools/bench/engine_bench.sh [images=32] [batch=8] [threads=2]
set -euo pipefail
cd "$(dirname "$0")/../.."
images=${1:-32}; batch=${2:-8}; threads=${3:-2}
swift build -c release --product infmllm >/dev/null
bin=$(swift build -c release --show-bin-path)/infmllm
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$bin" model init --preset bench --seed 1 --out "$work/model" >/dev/null
files=(Tests/ImagingTests/Fixtures/images/*.jpg)
for ((i = 0; i < images; i++)); do
    printf '{"image": "%s", "task": "caption", "max_new_tokens": 20, "min_new_tokens": 20}\n' "${files[i % ${#files[@]}]}"
done >"$work/manifest.jsonl"
start=$(date +%s.%N)
"$bin" infer --model "$work/model" --manifest "$work/manifest.jsonl" --batch-size "$batch" --threads "$threads" --json >"$work/out.jsonl"
end=$(date +%s.%N)
python3 - "$work/out.jsonl" "$start" "$end" "$images" "$batch" "$threads" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
start, end, n, batch, threads = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
vision = sum(r["timings_ms"]["vision"] for r in rows[::int(batch)]) / 1000
generate = sum(r["timings_ms"]["generate"] for r in rows[::int(batch)]) / 1000
errors = sum(1 for r in rows if "error" in r)
print(f"bench preset, {n} captions, batch {batch}, {threads} threads: {n / (end - start):.2f} images/s "
      f"({end - start:.2f} s wall incl. load; vision {vision:.2f} s, generate {generate:.2f} s; errors {errors})")
PY
