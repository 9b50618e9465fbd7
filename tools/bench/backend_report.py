"""Turns the JSON lines of tools/bench/backend_bench.sh into the tables of BENCHMARKS.md: per phase, each
implementation's rate, its achieved GFLOP/s (or weight GB/s for decoding) and that as a share of the measured
ceilings (`infmllm bench kernels`: bf16 multiply-add peak and read bandwidth). Each figure is the best of every
round and measured pass (our engine's warm-up batch, pass 0, left out).

    python3 tools/bench/backend_report.py OUT_DIR CHECKPOINT_DIR
"""

import json
import os
import sys

out, model = sys.argv[1], sys.argv[2]
config = json.load(open(os.path.join(model, "config.json")))
v, t = config["vision"], config["text"]
grid = config["image_size"] // v["patch_size"]
tokens = 1 + grid * grid
vh, vm, vl = v["hidden_size"], v["intermediate_size"], v["num_hidden_layers"]
th, tm, tl, vocab = t["hidden_size"], t["intermediate_size"], t["num_hidden_layers"], t["vocab_size"]
kv = t.get("num_key_value_heads", t["num_attention_heads"]) * (th // t["num_attention_heads"])
pool = config["pool_out_size"] ** 2


def lines(name):
    path = os.path.join(out, name)
    return [json.loads(l) for l in open(path) if l.strip()] if os.path.exists(path) else []


kernels = lines("kernels.jsonl")
peak = max((k["gflops"] for k in kernels if k["kind"] == "peak"), default=None)
# Each kernel set's own multiply-add peak (f32 FMA for the AVX2 sets), for rows tagged "mode/set".
set_peaks = {}
for k in kernels:
    if k["kind"] == "peak" and k.get("kernels"):
        set_peaks[k["kernels"]] = max(set_peaks.get(k["kernels"], 0), k["gflops"])
bandwidth = max((k["gbps"] for k in kernels if k["kind"] == "read-bandwidth"), default=None)

# FLOPs: products (2 per multiply-add) plus attention's two products.
vision_flops = 2 * (tokens - 1) * vh * 3 * v["patch_size"] ** 2 + vl * (
    2 * tokens * vh * (3 * vh + vh + 2 * vm) + 4 * tokens * tokens * vh) + 2 * pool * (vh * th + th * th)
layer_params = 2 * th * th + 2 * th * kv + 3 * th * tm
decoder_bytes = 2 * (tl * layer_params + vocab * th)  # bf16 weights read per decoding step


def prefill_flops(positions):
    return 2 * positions * tl * layer_params + tl * 4 * positions * positions * th / 2 + 2 * vocab * th


# (phase, batch, implementation) -> (rate, unit, achieved, ceiling): the best of every round and measured pass.
best = {}


def add(phase, batch, name, rate, unit, achieved, ceiling):
    key = (phase, batch, name)
    if key not in best or rate > best[key][0]:
        best[key] = (rate, unit, achieved, ceiling)


for r in lines("ours.jsonl"):
    if "timings_ms" not in r or r.get("pass", 1) == 0:  # pass 0 is the warm-up batch
        continue
    # A request's timings are its share of the work (InferenceResult.timings): its image's encoder pass divided
    # among the images encoded together, its prompt's positions, and of each decoding step the part its row took.
    # So one request's vision time is the batch's time an image, and its decode time is the batch's time a token.
    ms, mode, batch = r["timings_ms"], r["mode"], r["batch"]
    name = f"infmllm {mode}"
    ceiling = set_peaks.get(mode.split("/")[1], peak) if "/" in mode else peak
    add("vision", batch, name, 1 / (ms["vision"] / 1000), "images/s",
        vision_flops / (ms["vision"] / 1000) / 1e9, ceiling)
    positions = r["prompt_positions"]
    add("prefill", batch, name, positions / (ms["prefill"] / 1000), "tokens/s",
        prefill_flops(positions) / (ms["prefill"] / 1000) / 1e9, ceiling)
    steps = r["decode_steps"]
    if steps:
        per_token = ms["decode"] / 1000 / steps  # the batch's time for one token of every row, over the rows
        # int8 panels: 1 byte a weight plus a 4-byte scale and a 4-byte sum per 64 weights.
        scale = 1.125 / 2 if mode.split("/")[0] == "int8" else 1
        add("decode", batch, name, 1 / per_token, "tokens/s",
            decoder_bytes * scale / (per_token * batch) / 1e9, bandwidth)

for r in lines("torch.jsonl"):
    if "phase" not in r:
        continue
    name = f"PyTorch {r['dtype']}"
    if r["phase"] == "vision":
        add("vision", r["batch"], name, r["per_s"], "images/s", r["per_s"] * vision_flops / 1e9, peak)
    elif r["phase"] == "prefill":
        add("prefill", r["batch"], name, r["per_s"], "tokens/s",
            r["per_s"] * prefill_flops(r["prompt_tokens"]) / r["prompt_tokens"] / 1e9, peak)
    else:
        add("decode", r["batch"], name, r["per_s"], "tokens/s",
            decoder_bytes * r["per_s"] / r["batch"] / 1e9 * (2 if r["dtype"] == "f32" else 1), bandwidth)

for r in lines("llama.jsonl"):
    name = f"llama.cpp {r['type']}"
    scale = {"bf16": 1, "q8_0": 34 / 64}.get(r["type"], 1)  # q8_0: 34 bytes per 32 weights
    if r["phase"] == "prefill":
        add("prefill", r["batch"], name, r["per_s"], "tokens/s", r["per_s"] * 2 * tl * layer_params / 1e9, peak)
    else:
        add("decode", r["batch"], name, r["per_s"], "tokens/s",
            decoder_bytes * scale * r["per_s"] / r["batch"] / 1e9, bandwidth)

print(open(os.path.join(out, "machine.txt")).read().strip())
print(f"measured ceilings: bf16 peak {peak:.0f} GFLOP/s, read bandwidth {bandwidth:.1f} GB/s" if peak else "")
if set_peaks:
    print("multiply-add peak per kernel set: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in set_peaks.items()))
print(f"per image {vision_flops / 1e9:.1f} GFLOP; decoder weights {decoder_bytes / 1e9:.2f} GB per step (bf16)")
print()
print("| phase | batch | implementation | rate | achieved | of ceiling |")
print("|---|---|---|---|---|---|")
order = {"vision": 0, "prefill": 1, "decode": 2}
for (phase, batch, name), (rate, unit, achieved, ceiling) in sorted(best.items(),
                                                                    key=lambda r: (order[r[0][0]], r[0][1], r[0][2])):
    what = "GB/s" if phase == "decode" else "GFLOP/s"
    share = f"{100 * achieved / ceiling:.0f}%" if achieved and ceiling else "–"
    print(f"| {phase} | {batch} | {name} | {rate:.2f} {unit} | {achieved:.0f} {what} | {share} |")
