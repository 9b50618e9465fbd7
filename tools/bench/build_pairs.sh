#!/usr/bin/env bash
# Decoding of this tree's build against another build of infmllm (BASE_BINARY), in alternating pairs on the same
# checkpoint: each round runs both (in the other order every round) within seconds of each other, so that each pair
# shares the machine's memory bandwidth of that minute. Greedy and 3-beam caption decoding, one request after a
# warm-up one in the same process; reports every pair and the median ratio (this build over the base).
#
#   tools/bench/build_pairs.sh BASE_BINARY CHECKPOINT_DIR
#
# Environment: THREADS [2], NEW_TOKENS [32], ROUNDS [6], DTYPE [bf16].
set -euo pipefail
if [[ $# -ne 2 || ! -x $1 || ! -f $2/config.json ]]; then
    echo "usage: $0 BASE_BINARY CHECKPOINT_DIR" >&2
    exit 2
fi
cd "$(dirname "$0")/../.."
# shellcheck source=lib.sh
source tools/bench/lib.sh
base=$1 model=$2
threads=${THREADS:-2}
new_tokens=${NEW_TOKENS:-32}
rounds=${ROUNDS:-6}
dtype=${DTYPE:-bf16}
new=$(release_build)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
image=$(ls "$PWD"/Tests/ImagingTests/Fixtures/images/*.jpg | head -1)
for beams in 1 3; do
    for pass in 0 1; do
        printf '{"image": "%s", "task": "caption", "max_new_tokens": %d, "min_new_tokens": %d, "num_beams": %d}\n' \
            "$image" "$new_tokens" "$new_tokens" "$beams"
    done >"$work/beams-$beams.jsonl"
done

rate() {  # binary beams -> decoding steps per second of the second (warm) request
    "$1" infer --model "$model" --manifest "$work/beams-$2.jsonl" --batch-size "$2" --dtype "$dtype" \
        --threads "$threads" --json | tail -1 >"$work/out.json"
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
print("%.2f" % (d["decode_steps"] / d["timings_ms"]["decode"] * 1000))' "$work/out.json"
}

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $(date -u +%F); $dtype, $new_tokens steps"
echo "| round | base greedy | this greedy | ratio | base 3 beams | this 3 beams | ratio |"
echo "|---|---|---|---|---|---|---|"
: >"$work/pairs"
for ((round = 1; round <= rounds; round++)); do
    row="| $round"
    for beams in 1 3; do
        if ((round % 2)); then
            a=$(rate "$base" "$beams")
            b=$(rate "$new" "$beams")
        else
            b=$(rate "$new" "$beams")
            a=$(rate "$base" "$beams")
        fi
        ratio=$(python3 -c "print(f'{$b / $a:.3f}')")
        echo "$beams $ratio" >>"$work/pairs"
        row="$row | $a | $b | $ratio"
    done
    echo "$row |"
done
median_ratios "$work/pairs" 3 "beam(s)"
