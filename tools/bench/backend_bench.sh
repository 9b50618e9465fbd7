#!/usr/bin/env bash
# The CPU engine side by side with PyTorch and llama.cpp at the real model's widths, in one invocation: vision
# images/s, prefill and decode tokens/s at batch 1 and 8, read against the measured bf16 peak and read bandwidth.
#
#   tools/bench/backend_bench.sh [CHECKPOINT_DIR]      (default: a fresh `slice` checkpoint, bf16)
#
# Environment: THREADS [2], NEW_TOKENS [16], PYTHON [venv/bin/python: torch, transformers, safetensors, numpy,
# pillow, see tools/bench/torch_reference.py], OURS_MODES [bf16 int8 f32], TORCH_MODES [bf16 f32], LLAMA [1: also run
# tools/bench/llamacpp_reference.sh when its llama.cpp build is found], OUT [a temporary folder: raw JSON lines].
# Run it on a quiet machine: a build or another benchmark beside it halves every figure.
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${THREADS:-2}
new_tokens=${NEW_TOKENS:-16}
python=${PYTHON:-venv/bin/python}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
swift build -c release --product infmllm >/dev/null
bin=$(swift build -c release --show-bin-path)/infmllm
model=${1:-$out/slice}
if [[ ! -f $model/config.json ]]; then
    "$bin" model init --preset slice --dtype bf16 --seed 1 --out "$model" >/dev/null
fi
images=(Tests/ImagingTests/Fixtures/images/*.jpg)
for count in 1 8; do
    for ((i = 0; i < count; i++)); do
        printf '{"image": "%s", "task": "caption", "max_new_tokens": %d, "min_new_tokens": %d}\n' \
            "$PWD/${images[i]}" "$new_tokens" "$new_tokens"
    done >"$out/manifest$count.jsonl"
done

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $(date -u +%F)" | tee "$out/machine.txt"
"$bin" bench kernels --threads "$threads" --modes bf16 --shapes "1025,6144,1408;280,11008,4096;1,11008,4096" \
    | tee "$out/kernels.jsonl"
: >"$out/ours.jsonl"
for mode in ${OURS_MODES:-bf16 int8 f32}; do
    for count in 1 8; do
        for repeat in 1 2; do
            "$bin" infer --model "$model" --manifest "$out/manifest$count.jsonl" --batch-size 8 --dtype "$mode" \
                --threads "$threads" --json | head -1 | sed "s/^{/{\"mode\":\"$mode\",\"repeat\":$repeat,/" >>"$out/ours.jsonl"
        done
    done
done
prompt=$(head -1 "$out/ours.jsonl" | python3 -c 'import json, sys; print(json.load(sys.stdin)["prompt_positions"])')
: >"$out/torch.jsonl"
for mode in ${TORCH_MODES:-bf16 f32}; do
    "$python" tools/bench/torch_reference.py "$model" --threads "$threads" --dtype "$mode" --images 1,8 \
        --batches 1,8 --new-tokens "$new_tokens" --prompt-tokens "$prompt" --repeats 2 >>"$out/torch.jsonl"
done
: >"$out/llama.jsonl"
if [[ ${LLAMA:-1} == 1 && -x ${LLAMA_CPP_BIN:-/work/llama.cpp/build/bin}/llama-bench ]]; then
    PROMPT=$prompt GEN=$new_tokens tools/bench/llamacpp_reference.sh "$model" "$threads" >"$out/llama.jsonl" \
        2>"$out/llama.log" || echo "llama.cpp run failed: see $out/llama.log" >&2
fi
python3 tools/bench/backend_report.py "$out" "$model"
echo "raw figures: $out"
