#!/usr/bin/env bash
# The CUDA backend side by side with PyTorch + transformers (bf16) on the same GPU and the same random checkpoint:
# vision images/s, prefill and decode tokens/s at several batch sizes, read against the GPU's measured bf16 matrix
# peak and copy bandwidth (both measured here through PyTorch).
#
#   tools/bench/cuda_bench.sh [CHECKPOINT_DIR]      (default: a fresh real-widths `slice` checkpoint, bf16)
#
# Environment: BIN [the release infmllm], PYTHON [python3 with torch, transformers, safetensors],
# OURS_MODES [bf16 f32], BATCHES [1 8 32 64], F32_BATCHES [1 8], NEW_TOKENS [16], OUT [a temporary folder].
# Runs where no Swift is installed: give BIN a built binary (tools/gpu_kit.sh packs one with its libraries).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${BIN:-$(swift build -c release --show-bin-path)/infmllm}
python=${PYTHON:-python3}
new_tokens=${NEW_TOKENS:-16}
batches=${BATCHES:-1 8 32 64}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
model=${1:-$out/slice}
if [[ ! -f $model/config.json ]]; then
    "$bin" model init --preset slice --dtype bf16 --seed 1 --out "$model" >/dev/null
fi
images=(Tests/ImagingTests/Fixtures/images/*.jpg)
# Each run holds two batches: the first warms the process (cuBLAS loads its kernels on first use), the second is read.
for count in $batches; do
    for ((i = 0; i < 2 * count; i++)); do
        printf '{"image": "%s", "task": "caption", "max_new_tokens": %d, "min_new_tokens": %d}\n' \
            "$PWD/${images[i % ${#images[@]}]}" "$new_tokens" "$new_tokens"
    done >"$out/manifest$count.jsonl"
done

echo "machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"); $(nproc) cores; $(date -u +%F)" | tee "$out/machine.txt"
"$python" - >"$out/kernels.jsonl" <<'PY'
import json, torch
name = torch.cuda.get_device_name()
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
for _ in range(3): a @ b
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
start.record()
for _ in range(10): a @ b
end.record(); torch.cuda.synchronize()
print(json.dumps({"kind": "peak", "device": name, "gflops": 10 * 2 * 8192**3 / (start.elapsed_time(end) / 1e3) / 1e9}))
x = torch.empty(2 << 30, dtype=torch.uint8, device="cuda"); y = torch.empty_like(x)
for _ in range(2): y.copy_(x)
start.record()
for _ in range(5): y.copy_(x)
end.record(); torch.cuda.synchronize()
# A copy reads and writes each byte: read bandwidth counts both, as decoding's weight reads are all reads.
print(json.dumps({"kind": "read-bandwidth", "device": name, "gbps": 5 * 2 * x.numel() / (start.elapsed_time(end) / 1e3) / 1e9}))
PY
cat "$out/kernels.jsonl"

: >"$out/ours.jsonl"
for mode in ${OURS_MODES:-bf16 f32}; do
    list=$batches
    [[ $mode == f32 ]] && list=${F32_BATCHES:-1 8}
    for count in $list; do
        for repeat in 1 2; do
            # To a file first: `head` closing the pipe early would end infmllm with SIGPIPE.
            "$bin" infer --model "$model" --manifest "$out/manifest$count.jsonl" --batch-size "$count" --dtype "$mode" \
                --device cuda --json >"$out/run.jsonl" || { echo "infer $mode batch $count failed" >&2; continue; }
            tail -1 "$out/run.jsonl" | sed "s/^{/{\"mode\":\"$mode\",\"repeat\":$repeat,/" >>"$out/ours.jsonl"
        done
    done
done
prompt=$(head -1 "$out/ours.jsonl" | "$python" -c 'import json, sys; print(json.load(sys.stdin)["prompt_positions"])')
image_counts=$(for b in $batches; do if [[ $b -le 32 ]]; then printf '%s,' "$b"; fi; done)
"$python" tools/bench/torch_reference.py "$model" --device cuda --dtype bf16 --images "${image_counts%,}" \
    --batches "$(echo $batches | tr ' ' ,)" --new-tokens "$new_tokens" --prompt-tokens "$prompt" --repeats 2 \
    >"$out/torch.jsonl"
"$python" tools/bench/backend_report.py "$out" "$model"
echo "raw figures: $out"
