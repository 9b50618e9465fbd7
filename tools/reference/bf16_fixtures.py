"""bfloat16 reference outputs for the golden multitask checkpoint (Tests/GenerationTests/Fixtures/multitask): the
whole model cast to bfloat16, weights and compute, as `model.to(torch.bfloat16)` in PyTorch + transformers gives.

For the multitask requests of engine_cases.json (same images, prompts, left-padded batch and position ids as
engine_fixtures.py builds them) records the prefill logits of the last position and the greedy generations
(batched, and each row alone), and writes Tests/GenerationTests/Fixtures/bf16_reference.json.

    /work/venv-bench/bin/python tools/reference/bf16_fixtures.py [Tests/GenerationTests/Fixtures]

(the environment of tools/bench/torch_reference.py, whose checkpoint loader this uses.)

What "bf16" means in this reference, i.e. where PyTorch/transformers leave bf16:
  - every weight is the stored value rounded once to bfloat16 (the checkpoint mixes f32, bf16 and f16 tensors);
  - the pixels and every activation between ops are bfloat16; matmuls/convs accumulate in f32 inside oneDNN/MKL
    and round their outputs to bf16;
  - LlamaRMSNorm computes in float32 and rounds its normalized input to bf16 before the bf16 weight multiply;
  - eager attention: scores in bf16, softmax in float32 rounded to bf16;
  - rotary: inv_freq stays float32, cos/sin computed in float32 and rounded to bf16;
  - LayerNorm (EVA, ln_vision) and GELU on bf16 tensors compute internally in float32 and round to bf16.
Before recording it checks that the same loader in float32 reproduces engine_cases.json's float32 logits.
"""

import importlib.util
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load("torch_reference", os.path.join(ROOT, "tools", "bench", "torch_reference.py"))
ref = bench.ref  # tools/reference/engine_fixtures.py
GREEDY = [{"max_new_tokens": 12}, {"max_new_tokens": 10, "min_new_tokens": 6}]  # engine_fixtures' greedy settings


def relative_error(actual, expected):
    """max |a - b| / max |b| per row, as EngineFixtures.relativeError."""
    return ((actual - expected).abs().amax(-1) / expected.abs().amax(-1).clamp_min(1e-12)).tolist()


def inputs(model, cases):
    """engine_fixtures.record's batch: left-padded prompt embeddings with the visual tokens spliced in."""
    images = {}
    for request in cases["requests"]:
        file = request["image"]
        if file not in images:
            images[file] = ref.preprocess(os.path.join(ref.IMAGES, file), chat=False)[0]
    files = list(images)
    assert files == cases["image_files"]
    visual = model.visual_tokens(torch.stack([images[f] for f in files]).to(model.dtype))
    embed = model.llm.model.embed_tokens
    seqs = []
    for request, (before, after) in zip(cases["requests"], cases["prompt_ids"]):
        e = torch.cat([embed(torch.tensor(before)), visual[files.index(request["image"])], embed(torch.tensor(after))])
        seqs.append((e, e.shape[0]))
    length = max(n for _, n in seqs)
    pad = embed(torch.tensor([model.config["text"].get("pad_token_id", 0)]))[0]
    embeds = torch.stack([torch.cat([pad.expand(length - n, -1), e]) for e, n in seqs])
    mask = torch.stack([torch.cat([torch.zeros(length - n), torch.ones(n)]) for _, n in seqs]).long()
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    return embeds, mask, positions


def last_logits(model, cases):
    embeds, mask, positions = inputs(model, cases)
    logits = model.llm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions).logits[:, -1, :]
    return logits.float(), (embeds, mask)


def greedy(model, embeds, mask, settings, rows):
    out = model.llm.generate(inputs_embeds=embeds[rows], attention_mask=mask[rows], pad_token_id=0, eos_token_id=2,
                             bos_token_id=1, do_sample=False, num_beams=1, **settings)
    return ref.up_to_eos(out.tolist())


def main(fixtures):
    with open(os.path.join(fixtures, "engine_cases.json")) as f:
        recorded = json.load(f)
    cases = recorded["multitask"]
    directory = os.path.join(fixtures, "multitask")
    assert ref.CONFIG["image_size"] == json.load(open(os.path.join(directory, "config.json")))["image_size"]
    expected = torch.tensor(cases["prefill_logits"])
    f32_ids = {(json.dumps(g["settings"], sort_keys=True), tuple(g["rows"])): g["ids"] for g in cases["generations"]}

    with torch.inference_mode():
        f32 = bench.Model(directory, torch.float32, attn="eager")
        check = relative_error(last_logits(f32, cases)[0], expected)
        print("float32 loader vs engine_cases.json, relative error per row:", check, file=sys.stderr)
        if max(check) > 1e-4:
            raise SystemExit("the float32 loader does not reproduce engine_cases.json; not writing")
        del f32

        model = bench.Model(directory, torch.bfloat16, attn="eager")
        logits, (embeds, mask) = last_logits(model, cases)
        everyone = list(range(len(cases["requests"])))
        generations = []
        for s in GREEDY:
            for rows in [everyone] + [[r] for r in everyone]:
                ids = greedy(model, embeds, mask, s, rows)
                same = f32_ids.get((json.dumps(s, sort_keys=True), tuple(rows))) == ids
                generations.append({"settings": s, "rows": rows, "ids": ids, "same_as_f32": same})

    errors = relative_error(logits, expected)
    result = {
        "torch": torch.__version__, "transformers": bench.transformers.__version__,
        "checkpoint": "multitask", "dtype": "bfloat16", "attn_implementation": "eager",
        "requests": cases["requests"],
        "prefill_logits": [[float(f"{x:.5g}") for x in row] for row in logits.tolist()],
        "prefill_argmax": logits.argmax(-1).tolist(),
        "f32_prefill_argmax": expected.argmax(-1).tolist(),
        "f32_relative_error": [float(f"{e:.4g}") for e in errors],
        "generations": generations,
    }
    path = os.path.join(fixtures, "bf16_reference.json")
    with open(path, "w") as f:
        json.dump(result, f, separators=(",", ":"))
        f.write("\n")
    print("bf16 vs float32 logits, relative error per row:", result["f32_relative_error"], file=sys.stderr)
    print("greedy ids equal to float32:", sum(g["same_as_f32"] for g in generations), "of", len(generations),
          file=sys.stderr)
    print("wrote", path, file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "Tests", "GenerationTests", "Fixtures"))
