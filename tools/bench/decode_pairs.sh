#!/usr/bin/env bash
# Batch-1 decoding, our engine against llama.cpp on the same LLaMA layers, in alternating pairs: each round runs
# both (in the other order every round) within seconds of each other, so that each pair shares this machine's
# memory bandwidth of that minute, which moves by up to 40% between minutes. Reports every pair and the median of
# the ratios, for bf16 against llama.cpp bf16 and int8 against its q8_0.
#
#   tools/bench/decode_pairs.sh CHECKPOINT_DIR GGUF_DIR
#
# GGUF_DIR holds llama-bf16.gguf and llama-q8_0.gguf of the checkpoint's decoder (tools/bench/llamacpp_reference.sh
# with GGUF_DIR set writes them). Both decode NEW_TOKENS single-token steps after the 265-position caption prompt
# (llama-bench at that depth); ours runs a warm-up request first in the same process and times the second.
# Environment: THREADS [2], NEW_TOKENS [64], ROUNDS [6], LLAMA_CPP_BIN [/work/llama.cpp/build/bin].
set -euo pipefail
if [[ $# -ne 2 || ! -f $1/config.json ]]; then
    echo "usage: $0 CHECKPOINT_DIR GGUF_DIR" >&2
    exit 2
fi
cd "$(dirname "$0")/../.."
# shellcheck source=lib.sh
source tools/bench/lib.sh
model=$1 gguf=$2
threads=${THREADS:-2}
new_tokens=${NEW_TOKENS:-64}
rounds=${ROUNDS:-6}
llama_bench=${LLAMA_CPP_BIN:-/work/llama.cpp/build/bin}/llama-bench
for type in bf16 q8_0; do
    [[ -s $gguf/llama-$type.gguf ]] || { echo "$gguf/llama-$type.gguf is missing" >&2; exit 1; }
done
[[ -x $llama_bench ]] || { echo "$llama_bench not found: set LLAMA_CPP_BIN" >&2; exit 1; }
bin=$(release_build)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
image=$(ls "$PWD"/Tests/ImagingTests/Fixtures/images/*.jpg | head -1)
for pass in 0 1; do
    printf '{"image": "%s", "task": "caption", "max_new_tokens": %d, "min_new_tokens": %d}\n' \
        "$image" "$new_tokens" "$new_tokens"
done >"$work/manifest.jsonl"
prompt=""

ours() {  # mode -> tokens/s of the second (warm) request's decoding; sets `prompt` when not run in a subshell
    "$bin" infer --model "$model" --manifest "$work/manifest.jsonl" --batch-size 1 --dtype "$1" \
        --threads "$threads" --json | tail -1 >"$work/ours.json"
    prompt=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["prompt_positions"])' "$work/ours.json")
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
print("%.2f" % (d["decode_steps"] / d["timings_ms"]["decode"] * 1000))' "$work/ours.json"
}
llama() {  # type -> tokens/s
    "$llama_bench" -m "$gguf/llama-$1.gguf" -p 0 -n "$new_tokens" -d "$prompt" -t "$threads" -r 2 -o jsonl \
        2>/dev/null | python3 -c 'import json, sys; print("%.2f" % json.loads(sys.stdin.readline())["avg_ts"])'
}

ours bf16 >/dev/null  # the prompt's length, for llama.cpp's depth
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $(date -u +%F); $new_tokens steps"
echo "| round | infmllm bf16 | llama.cpp bf16 | ratio | infmllm int8 | llama.cpp q8_0 | ratio |"
echo "|---|---|---|---|---|---|---|"
: >"$work/pairs"
for ((round = 1; round <= rounds; round++)); do
    row="| $round"
    for pair in "bf16 bf16" "int8 q8_0"; do
        read -r mode type <<<"$pair"
        if ((round % 2)); then
            a=$(ours "$mode")
            b=$(llama "$type")
        else
            b=$(llama "$type")
            a=$(ours "$mode")
        fi
        ratio=$(python3 -c "print(f'{$a / $b:.2f}')")
        echo "$mode $ratio" >>"$work/pairs"
        row="$row | $a | $b | $ratio"
    done
    echo "$row |"
done
median_ratios "$work/pairs" 2
