#!/usr/bin/env bash
# Matrix products of two builds side by side: `infmllm bench kernels` of each binary in alternating order, ROUNDS
# times, so that each pair shares the machine's memory bandwidth of that minute; reports the median milliseconds of
# every shape for both and their ratio.
#
#   tools/bench/kernel_pairs.sh BEFORE_BINARY AFTER_BINARY
#
# Environment: SHAPES (m,n,k;... [decoding rows 1-32 against a 268 MB weight, streamed from memory as in decoding]),
# THREADS [2], KERNELS [each build's default], MODES [bf16], ROUNDS [5], DISTINCT [1], SECONDS_EACH [0.5]
# (seconds a measurement).
set -euo pipefail
if [[ $# -ne 2 || ! -x $1 || ! -x $2 ]]; then
    echo "usage: $0 BEFORE_BINARY AFTER_BINARY" >&2
    exit 2
fi
before=$1 after=$2
shapes=${SHAPES:-"1,32768,4096;8,32768,4096;12,32768,4096;16,32768,4096;24,32768,4096;32,32768,4096"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
kernels=()
[[ -n ${KERNELS:-} ]] && kernels=(--kernels "$KERNELS")  # builds before the kernel sets have no --kernels
measure() {  # binary name round
    "$1" bench kernels --threads "${THREADS:-2}" "${kernels[@]}" --modes "${MODES:-bf16}" \
        --shapes "$shapes" --distinct "${DISTINCT:-1}" --seconds "${SECONDS_EACH:-0.5}" \
        | sed "s/^/$2 $3 /" >>"$work/lines"
}
for ((round = 0; round < ${ROUNDS:-5}; round++)); do
    if ((round % 2 == 0)); then
        measure "$before" before "$round"
        measure "$after" after "$round"
    else
        measure "$after" after "$round"
        measure "$before" before "$round"
    fi
done
python3 - "$work/lines" <<'EOF'
import json, statistics, sys
times = {}
for line in open(sys.argv[1]):
    side, _, text = line.split(" ", 2)
    record = json.loads(text)
    if record.get("kind") != "linear":
        continue
    key = (record.get("mode", ""), record.get("kernels", ""), tuple(record["shape"]))
    times.setdefault(key, {}).setdefault(side, []).append(record["seconds"] * 1e3)
print(f"{'mode':6} {'kernels':11} {'m,n,k':18} {'before ms':>10} {'after ms':>10} {'speed-up':>9}")
for (mode, kernels, shape), sides in times.items():
    if len(sides) < 2:  # a kernel set or mode only one of the builds has
        print(f"{mode:6} {kernels:11} {','.join(map(str, shape)):18} measured by the {next(iter(sides))} build only")
        continue
    b, a = statistics.median(sides["before"]), statistics.median(sides["after"])
    print(f"{mode:6} {kernels:11} {','.join(map(str, shape)):18} {b:10.2f} {a:10.2f} {b / a:8.2f}x")
EOF
