#!/usr/bin/env bash
# The CPU engine side by side with PyTorch and llama.cpp at the real model's widths, in one invocation: vision
# images/s, prefill and decode tokens/s at batch 1 and 8, read against the measured bf16 peak and read bandwidth.
#
#   tools/bench/backend_bench.sh [CHECKPOINT_DIR]      (default: a fresh `slice` checkpoint, bf16)
#
# Environment: THREADS [2], NEW_TOKENS [16], PYTHON [venv/bin/python: torch, transformers, safetensors, numpy,
# pillow, see tools/bench/torch_reference.py], OURS_MODES [bf16 int8 f32], KERNELS [auto: the CPU kernel sets our
# bf16 and int8 modes run with, e.g. "avx512bf16 avx2vnni avx2"; f32 runs once], TORCH_MODES [bf16 f32; " " for
# none], LLAMA [1: also run
# tools/bench/llamacpp_reference.sh when its llama.cpp build is found], ROUNDS [2], OUT [a temporary folder: raw
# JSON lines].
#
# Every implementation is measured warm, as a worker runs: our engine runs one warm-up batch and then two measured
# ones in the same process (as PyTorch runs a warm-up before its best of two). The whole set runs ROUNDS times, each
# round in the other order, and each figure is the best over the rounds: this machine's memory bandwidth and
# throughput move by up to 40% from minute to minute, and a figure measured once lands in a good or a bad minute by
# chance. Run it on a quiet machine: a build or another benchmark beside it halves every figure.
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
# A warm-up batch and two measured ones of the same images (the vision encoder shares work only within a batch).
for count in 1 8; do
    for pass in 0 1 2; do
        for ((i = 0; i < count; i++)); do
            printf '{"image": "%s", "task": "caption", "max_new_tokens": %d, "min_new_tokens": %d}\n' \
                "$PWD/${images[i]}" "$new_tokens" "$new_tokens"
        done
    done >"$out/manifest$count.jsonl"
done

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $(date -u +%F)" | tee "$out/machine.txt"
kernel_sets=${KERNELS:-auto}
ceilings() {
    "$bin" bench kernels --threads "$threads" --kernels "${kernel_sets// /,}" --modes bf16 \
        --shapes "1025,6144,1408;280,11008,4096;1,11008,4096" | tee -a "$out/kernels.jsonl"
}
: >"$out/kernels.jsonl"
ours() {
    local round=$1 mode count set tag first=1
    for set in $kernel_sets; do
        for mode in ${OURS_MODES:-bf16 int8 f32}; do
            # f32 runs OpenBLAS whatever the kernel set: once. Other modes are tagged with their set ("bf16/avx2").
            if [[ $mode == f32 && $first == 0 ]]; then continue; fi
            tag=$mode
            if [[ $set != auto && $mode != f32 ]]; then tag="$mode/$set"; fi
            for count in 1 8; do
                # One line per batch (every request of a batch carries the batch's timings), tagged with its pass.
                "$bin" infer --model "$model" --manifest "$out/manifest$count.jsonl" --batch-size "$count" \
                    --dtype "$mode" --kernels "$set" --threads "$threads" --json \
                    | awk -v c="$count" -v m="$tag" -v r="$round" '(NR - 1) % c == 0 {
                        sub(/^{/, "{\"mode\":\"" m "\",\"round\":" r ",\"pass\":" int((NR - 1) / c) ","); print }' \
                        >>"$out/ours.jsonl"
            done
        done
        first=0
    done
}
torch() {
    local mode
    for mode in ${TORCH_MODES:-bf16 f32}; do
        "$python" tools/bench/torch_reference.py "$model" --threads "$threads" --dtype "$mode" --images 1,8 \
            --batches 1,8 --new-tokens "$new_tokens" --prompt-tokens "$prompt" --repeats 2 >>"$out/torch.jsonl"
    done
}
llama() {
    if [[ ${LLAMA:-1} == 1 && -x ${LLAMA_CPP_BIN:-/work/llama.cpp/build/bin}/llama-bench ]]; then
        GGUF_DIR=${GGUF_DIR:-$out/gguf} PROMPT=$prompt GEN=$new_tokens tools/bench/llamacpp_reference.sh "$model" \
            "$threads" >>"$out/llama.jsonl" 2>>"$out/llama.log" || echo "llama.cpp run failed: see $out/llama.log" >&2
    fi
}
: >"$out/ours.jsonl"
: >"$out/torch.jsonl"
: >"$out/llama.jsonl"
: >"$out/llama.log"
ceilings
ours 1
prompt=$(head -1 "$out/ours.jsonl" | python3 -c 'import json, sys; print(json.load(sys.stdin)["prompt_positions"])')
torch
llama
for ((round = 2; round <= ${ROUNDS:-2}; round++)); do
    ceilings
    if ((round % 2 == 0)); then
        llama
        torch
        ours "$round"
    else
        ours "$round"
        torch
        llama
    fi
done
python3 tools/bench/backend_report.py "$out" "$model"
echo "raw figures: $out"
