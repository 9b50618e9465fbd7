#!/usr/bin/env bash
# llama.cpp as a CPU reference for the LLaMA decoder alone: converts a checkpoint's decoder to GGUF (bf16 and q8_0,
# with tools/bench/llama_to_gguf.py) and measures prefill and decode at batch 1 (llama-bench) and at batch 8
# (llama-batched-bench, 8 independent sequences).
#
#   tools/bench/llamacpp_reference.sh CHECKPOINT_DIR [THREADS=2]
#
# Prints one JSON object a line on stdout, per type and figure:
#   {"impl":"llama.cpp","type":"bf16","phase":"prefill","batch":1,"per_s":123.45}
# per_s is tokens per second: for batch 8, all sequences' tokens together (prefill: 8 x 280 prompt tokens in one
# batch; decode: 8 new tokens a step). Each tool's own jsonl output and the settings go to stderr.
#
# Environment (defaults in brackets):
#   LLAMA_CPP_BIN   llama-bench and llama-batched-bench [/work/llama.cpp/build/bin]
#   LLAMA_CPP_DIR   llama.cpp source, for convert_hf_to_gguf.py [/work/llama.cpp]
#   LLAMA_VENV      virtual environment for the converter, see llama_to_gguf.py's docstring [/work/venv-llama]
#   PROMPT GEN BATCH  prompt tokens, generated tokens, parallel sequences [280 16 8]
#   REPS            llama-bench repetitions per test, averaged [5]; llama-batched-bench runs each test once
#   TYPES           GGUF types to convert and measure [bf16,q8_0]
#   GGUF_DIR        keep the GGUF files here and reuse ones newer than the checkpoint [a temporary folder, removed]
#   LLAMA_BENCH_ARGS, LLAMA_BATCHED_BENCH_ARGS  extra arguments for each tool, e.g. "-fa 1"
#
# llama.cpp and its converter live outside this repository; llama_to_gguf.py's docstring says how they were set up.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || ! -d $1 ]]; then
    echo "usage: $0 CHECKPOINT_DIR [THREADS=2]" >&2
    exit 2
fi
checkpoint=$(cd "$1" && pwd)
threads=${2:-2}
bin=${LLAMA_CPP_BIN:-/work/llama.cpp/build/bin}
export LLAMA_CPP_DIR=${LLAMA_CPP_DIR:-/work/llama.cpp}
venv=${LLAMA_VENV:-/work/venv-llama}
prompt=${PROMPT:-280}
gen=${GEN:-16}
batch=${BATCH:-8}
reps=${REPS:-5}
types=${TYPES:-bf16,q8_0}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

for tool in llama-bench llama-batched-bench; do
    if [[ ! -x $bin/$tool ]]; then
        echo "$bin/$tool not found: build llama.cpp or set LLAMA_CPP_BIN" >&2
        exit 1
    fi
done
if [[ ! -x $venv/bin/python ]]; then
    echo "$venv/bin/python not found: set LLAMA_VENV (see tools/bench/llama_to_gguf.py)" >&2
    exit 1
fi

work=$(mktemp -d -t llamacpp-ref.XXXXXX)
trap 'rm -rf "$work"' EXIT
gguf_dir=${GGUF_DIR:-$work/gguf}
mkdir -p "$gguf_dir"

IFS=, read -r -a type_list <<<"$types"
missing=()
for type in "${type_list[@]}"; do
    file=$gguf_dir/llama-$type.gguf
    if [[ ! -s $file || $file -ot $checkpoint/model.safetensors || $file -ot $checkpoint/config.json ]]; then
        missing+=("$type")
    fi
done
if ((${#missing[@]})); then
    echo "converting $checkpoint to ${missing[*]} in $gguf_dir" >&2
    (IFS=,; "$venv/bin/python" "$here/llama_to_gguf.py" "$checkpoint" "$gguf_dir" --types "${missing[*]}") >&2
fi

models=()
for type in "${type_list[@]}"; do models+=(-m "$gguf_dir/llama-$type.gguf"); done

# Batch 1: llama-bench's pp<PROMPT> (one prompt of PROMPT tokens) and tg<GEN> (GEN single-token steps) at depth
# PROMPT, so that its steps attend over a prompt's keys as the other implementations' do.
: >"$work/bench.jsonl"
for args in "-p $prompt -n 0" "-p 0 -n $gen -d $prompt"; do
    echo "llama-bench $args -t $threads -r $reps ${LLAMA_BENCH_ARGS:-}" >&2
    # shellcheck disable=SC2086
    "$bin/llama-bench" "${models[@]}" $args -t "$threads" -r "$reps" -o jsonl ${LLAMA_BENCH_ARGS:-} \
        >>"$work/bench.jsonl" 2>"$work/bench.log" || { cat "$work/bench.log" >&2; exit 1; }
done
cat "$work/bench.jsonl" >&2

# Batch BATCH: BATCH sequences of PROMPT tokens decoded together, then GEN steps of BATCH tokens.
context=$((batch * (prompt + gen)))
: >"$work/batched.jsonl"
for type in "${type_list[@]}"; do
    echo "llama-batched-bench ($type) -c $context -npp $prompt -ntg $gen -npl $batch -t $threads -tb $threads" \
        "${LLAMA_BATCHED_BENCH_ARGS:-}" >&2
    # llama-batched-bench prints through common_log's queue, whose writer thread is not flushed at exit, so the
    # result line of a run that succeeded is sometimes lost (often with tiny models, whose runs end right after
    # the line is queued; not seen with the bench preset). Run again then.
    for attempt in 1 2 3 4 5; do
        # shellcheck disable=SC2086
        "$bin/llama-batched-bench" -m "$gguf_dir/llama-$type.gguf" -c "$context" -npp "$prompt" -ntg "$gen" \
            -npl "$batch" -t "$threads" -tb "$threads" --output-format jsonl ${LLAMA_BATCHED_BENCH_ARGS:-} \
            >"$work/batched-$type.out" 2>"$work/batched-$type.log" || { cat "$work/batched-$type.log" >&2; exit 1; }
        if grep -q '^{.*"speed_tg"' "$work/batched-$type.out"; then break; fi
        echo "llama-batched-bench ($type) printed no result line (attempt $attempt of 5)" >&2
    done
    grep '^{.*"speed_tg"' "$work/batched-$type.out" | sed "s/^{/{\"type\": \"$type\", /" \
        | tee -a "$work/batched.jsonl" >&2 || true
done

python3 - "$work/bench.jsonl" "$work/batched.jsonl" "$types" "$prompt" "$gen" "$batch" <<'EOF'
import json, sys

bench_file, batched_file, types, prompt, gen, batch = sys.argv[1:]
prompt, gen, batch = int(prompt), int(gen), int(batch)
bench = [json.loads(line) for line in open(bench_file) if line.startswith("{")]
batched = [json.loads(line) for line in open(batched_file) if line.startswith("{")]

def emit(type_, phase, batch_, per_s):
    print(json.dumps({"impl": "llama.cpp", "type": type_, "phase": phase, "batch": batch_, "per_s": round(per_s, 2)}))

failed = False
for type_ in types.split(","):
    name = f"llama-{type_}.gguf"
    rows = [r for r in bench if r["model_filename"].endswith(name)]
    for phase, match in (("prefill", lambda r: r["n_prompt"] == prompt and r["n_gen"] == 0),
                         ("decode", lambda r: r["n_gen"] == gen and r["n_prompt"] == 0)):
        found = [r for r in rows if match(r)]
        if found:
            emit(type_, phase, 1, found[0]["avg_ts"])
        else:
            print(f"no llama-bench {phase} result for {type_}", file=sys.stderr); failed = True
    found = [r for r in batched if r["type"] == type_ and r["pl"] == batch]
    if found:
        emit(type_, "prefill", batch, found[0]["speed_pp"])
        emit(type_, "decode", batch, found[0]["speed_tg"])
    else:
        print(f"no llama-batched-bench result for {type_}", file=sys.stderr); failed = True
sys.exit(1 if failed else 0)
EOF
