#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and no Swift: the CUDA conformance and golden tests, then the benchmark against
# PyTorch, with the programs tools/gpu_kit.sh packed (unpacked into ./gpu-kit). Logs and figures go to OUT.
#
#   tar -xJf kit.tar.xz && OUT=/tmp/gpu tools/gpu_check.sh [tests|bench|full|all]
#
# tests: the CUDA conformance and golden tests; bench: the real-widths slice (3 + 3 layers) at batches 1-64;
# full: the 7b preset's shapes (39 blocks + 32 layers, grown from a slice) at batches 1 and 8; all: tests and bench.
set -uo pipefail
cd "$(dirname "$0")/.."
kit=$PWD/gpu-kit
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
what=${1:-all}
# NVRTC and cuBLAS: CUDA's own, or the ones PyTorch's wheels bring.
cuda=$(find /usr/local/cuda*/lib64 /opt /usr/lib /usr/local/lib -maxdepth 8 \
    \( -name 'libnvrtc.so.1[23]' -o -name 'libcublas.so.1[23]' \) 2>/dev/null | xargs -r -n1 dirname | sort -u | paste -sd:)
echo "CUDA libraries from: ${cuda:-none found}"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
root=$(cat "$kit/build-root")
if [[ $root != "$PWD" && ! -e $root ]]; then mkdir -p "$(dirname "$root")" && ln -s "$PWD" "$root"; fi
cat >"$kit/run" <<RUN
#!/bin/sh
LD_LIBRARY_PATH="$kit/lib${cuda:+:$cuda}\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "\$@"
RUN
chmod +x "$kit/run"
printf '#!/bin/sh\nexec "%s/run" "%s/infmllm" "$@"\n' "$kit" "$kit" >"$kit/infmllm-run"
chmod +x "$kit/infmllm-run"
status=0
if [[ $what == all || $what == tests ]]; then
    "$kit/run" "$kit/tests/infmllmPackageTests.xctest" --testing-library swift-testing \
        --filter 'ConformanceTests|CUDAGoldenTests|KernelSourceTests' 2>&1 | tee "$out/tests.log"
    status=${PIPESTATUS[0]}
fi
if [[ $what == all || $what == bench ]]; then
    BIN=$kit/infmllm-run OUT=$out/bench tools/bench/cuda_bench.sh 2>&1 | tee "$out/bench.log"
fi
if [[ $what == full ]]; then
    "$kit/infmllm-run" model init --preset slice --dtype bf16 --seed 1 --out "$out/slice" >/dev/null
    python3 tools/bench/grow_checkpoint.py "$out/slice" "$out/7b" --vision-blocks 39 --text-layers 32
    rm -rf "$out/slice"
    BIN=$kit/infmllm-run OUT=$out/full BATCHES="1 8" OURS_MODES=bf16 tools/bench/cuda_bench.sh "$out/7b" 2>&1 |
        tee "$out/full.log"
fi
exit "$status"
