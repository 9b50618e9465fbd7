#!/usr/bin/env bash
# Top-1 agreement of the fast modes with the exact f32 mode over a fixture set: every image under
# Tests/ImagingTests/Fixtures/images captioned and asked a question (over 200 prompts), greedy, 8 new tokens, on a
# random checkpoint (default: the `bench` preset, f32 weights). Reports, for bf16 and int8, how often the first
# generated token equals f32's, how often the whole sequence does, and the mean agreeing prefix.
#
#   tools/bench/agreement.sh [CHECKPOINT_DIR] [THREADS=2]
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product infmllm >/dev/null
bin=$(swift build -c release --show-bin-path)/infmllm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
model=${1:-$work/model}
threads=${2:-2}
[[ -f $model/config.json ]] || "$bin" model init --preset bench --seed 3 --out "$model" >/dev/null
for image in Tests/ImagingTests/Fixtures/images/*; do
    printf '{"image": "%s", "task": "caption", "max_new_tokens": 8}\n' "$PWD/$image"
    printf '{"image": "%s", "task": "vqa", "question": "What is in the picture?", "max_new_tokens": 8}\n' "$PWD/$image"
done >"$work/manifest.jsonl"
for mode in f32 bf16 int8; do
    "$bin" infer --model "$model" --manifest "$work/manifest.jsonl" --batch-size 8 --dtype "$mode" \
        --threads "$threads" --json >"$work/$mode.jsonl"
done
python3 - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
def load(mode):
    return [json.loads(line) for line in open(os.path.join(work, mode + ".jsonl"))]
reference = load("f32")
ok = [r for r in reference if "tokens" in r]
print(f"{len(ok)} prompts answered in f32 ({len(reference) - len(ok)} refused: unreadable fixture images)")
for mode in ("bf16", "int8"):
    rows = load(mode)
    pairs = [(a["tokens"], b["tokens"]) for a, b in zip(reference, rows) if "tokens" in a and "tokens" in b]
    first = sum(a[0] == b[0] for a, b in pairs)
    whole = sum(a == b for a, b in pairs)
    prefix = sum(next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b))) for a, b in pairs)
    print(f"{mode}: first token {first}/{len(pairs)} ({100 * first / len(pairs):.1f}%), whole sequence "
          f"{whole}/{len(pairs)} ({100 * whole / len(pairs):.1f}%), mean agreeing prefix {prefix / len(pairs):.2f} "
          f"of 8 tokens")
PY
