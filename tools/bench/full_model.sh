#!/usr/bin/env bash
# Captions with the full InfMLLM-7B shapes (the random `7b` preset, bf16, ~15.5 GB on disk): seconds per caption
# and captions per hour for the engine's fast modes, and PyTorch bf16 at batch 1 beside them. Each run is timed warm,
# as a worker runs: a warm-up batch first in the same process (PyTorch's reference runs one too), then the batch
# reported.
#
#   tools/bench/full_model.sh [CHECKPOINT_DIR]     (default: writes the preset under $OUT)
#
# Environment: THREADS [2], NEW_TOKENS [8], PYTHON [venv/bin/python], RUNS ["bf16:1 int8:1 int8:8": mode:batch],
# TORCH [1], OUT [a temporary folder]. Needs about 16 GB of memory and 16 GB of disk.
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${THREADS:-2}
new_tokens=${NEW_TOKENS:-8}
python=${PYTHON:-venv/bin/python}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
swift build -c release --product infmllm >/dev/null
bin=$(swift build -c release --show-bin-path)/infmllm
model=${1:-$out/7b}
[[ -f $model/config.json ]] || "$bin" model init --preset 7b --dtype bf16 --seed 1 --out "$model" >/dev/null
images=(Tests/ImagingTests/Fixtures/images/*.jpg)
for run in ${RUNS:-bf16:1 int8:1 int8:8}; do
    mode=${run%%:*} batch=${run##*:}
    for pass in 0 1; do
        for ((i = 0; i < batch; i++)); do
            printf '{"image": "%s", "task": "caption", "max_new_tokens": %d, "min_new_tokens": %d}\n' \
                "$PWD/${images[i]}" "$new_tokens" "$new_tokens"
        done
    done >"$out/manifest.jsonl"
    start=$(date +%s.%N)
    # The first line of the second batch (every line of a batch carries the batch's timings).
    "$bin" infer --model "$model" --manifest "$out/manifest.jsonl" --batch-size "$batch" --dtype "$mode" \
        --threads "$threads" --json | sed -n "$((batch + 1))p" >"$out/$mode-$batch.json"
    end=$(date +%s.%N)
    python3 - "$out/$mode-$batch.json" "$mode" "$batch" "$start" "$end" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); mode, batch = sys.argv[2], int(sys.argv[3])
t = r["timings_ms"]; total = (t["vision"] + t["generate"]) / 1000
print(f"infmllm {mode}, batch {batch}: vision {t['vision'] / 1000:.1f} s, prefill {t['prefill'] / 1000:.1f} s, "
      f"decode {t['decode'] / 1000 / max(r['decode_steps'], 1):.3f} s/step; {total / batch:.1f} s per caption, "
      f"{3600 * batch / total:.0f} captions/hour (wall with loading and the warm-up batch: "
      f"{float(sys.argv[5]) - float(sys.argv[4]):.0f} s)")
PY
done
if [[ ${TORCH:-1} == 1 ]]; then
    prompt=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["prompt_positions"])' \
        "$(ls "$out"/*-1.json | head -1)")
    "$python" tools/bench/torch_reference.py "$model" --threads "$threads" --dtype bf16 --images 1 --batches 1 \
        --new-tokens "$new_tokens" --prompt-tokens "$prompt" --repeats 1 | tee "$out/torch.jsonl"
fi
