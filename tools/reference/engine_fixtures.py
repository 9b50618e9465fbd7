"""Golden fixtures for the Swift engine, from an independent reference: PyTorch, transformers' LlamaForCausalLM
and its `generate`, Pillow preprocessing, and an EVA ViT + pool-adapter written here from the spec (§1, §2).

Makes small random-weight checkpoints in both layouts (multitask: safetensors with mixed f32/bf16/f16 tensors, and
the same weights as two shards with an index; chat: PyTorch .bin) and records, for several images, prompts and
decoding settings: vision features, pooled visual tokens, prefill logits, and generated ids (with the sum of their
log-probabilities, from `compute_transition_scores`), batched.

    python3 -m venv venv && venv/bin/pip install torch transformers safetensors sentencepiece pillow numpy
    venv/bin/python tools/reference/engine_fixtures.py Tests/GenerationTests/Fixtures

The committed fixtures come from transformers 5.x. transformers 4.31 (`transformers==4.31.0 "numpy<2"`), which the
released model was evaluated with, gives the same prefill logits (within 4e-6) and the same ids for every
generation here: these sequences never end with EOS, where the two releases' beam searches differ
(beam_fixtures.py covers that).

Prompt chunks are tokenized with `sentencepiece` (plain text, no special tokens inside chunks, so the slow
LlamaTokenizer gives the same ids; the tokenizer tests prove that on the chunk cases).
"""

import json
import math
import os
import shutil
import sys

import numpy as np
import sentencepiece as spm
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
TOKENIZER = os.path.join(ROOT, "Tests", "TokenizationTests", "Fixtures", "tokenizer.model")
IMAGES = os.path.join(ROOT, "Tests", "ImagingTests", "Fixtures", "images")
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the user's questions.")

CONFIG = {
    "model_type": "infmllm", "image_size": 56, "pool_out_size": 2,
    "vision": {"patch_size": 14, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
               "intermediate_size": 64, "layer_norm_eps": 1e-6},
    "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "vocab_size": 1400,
             "max_position_embeddings": 512, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0},
}


def up_to_eos(rows, transitions, eos=2):
    """Each generated row cut after its first end-of-sequence token (kept), as the fixtures record ids, and the sum of
    those tokens' log-probabilities (`transitions`: compute_transition_scores' rows)."""
    result, sums = [], []
    for row, scores in zip(rows, transitions):
        ids, total = [], 0.0
        for token, score in zip(row, scores):
            ids.append(token)
            total += score
            if token == eos:
                break
        result.append(ids)
        sums.append(total)
    return result, sums


# ---------------------------------------------------------------- reference networks, written from the spec

class EVABlock(torch.nn.Module):
    def __init__(self, d, heads, mlp, eps):
        super().__init__()
        self.heads = heads
        self.norm1 = torch.nn.LayerNorm(d, eps=eps)
        self.qkv = torch.nn.Linear(d, 3 * d, bias=False)
        self.q_bias = torch.nn.Parameter(torch.zeros(d))
        self.v_bias = torch.nn.Parameter(torch.zeros(d))
        self.proj = torch.nn.Linear(d, d)
        self.norm2 = torch.nn.LayerNorm(d, eps=eps)
        self.fc1 = torch.nn.Linear(d, mlp)
        self.fc2 = torch.nn.Linear(mlp, d)

    def forward(self, x):
        b, n, d = x.shape
        h = self.norm1(x)
        bias = torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])
        qkv = torch.nn.functional.linear(h, self.qkv.weight, bias).reshape(b, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        q = q * (d // self.heads) ** -0.5
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.norm2(x))))


class EVA(torch.nn.Module):
    def __init__(self, c, image_size):
        super().__init__()
        d, p = c["hidden_size"], c["patch_size"]
        g = image_size // p
        self.patch = torch.nn.Conv2d(3, d, p, p)
        self.cls_token = torch.nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, 1 + g * g, d))
        self.blocks = torch.nn.ModuleList(
            EVABlock(d, c["num_attention_heads"], c["intermediate_size"], c["layer_norm_eps"])
            for _ in range(c["num_hidden_layers"]))

    def forward(self, images):
        x = self.patch(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return x


def pool_adapter(features, ln, mlp0, mlp2, grid, pool):
    x = ln(features)[:, 1:, :]
    b, n, d = x.shape
    x = x.reshape(b, grid, grid, d).permute(0, 3, 1, 2)
    x = torch.nn.functional.avg_pool2d(x, grid // pool).flatten(2).transpose(1, 2)
    return x, mlp2(torch.nn.functional.gelu(mlp0(x)))


# ---------------------------------------------------------------- weights

def make_weights(seed):
    torch.manual_seed(seed)
    v, t = CONFIG["vision"], CONFIG["text"]
    eva = EVA(v, CONFIG["image_size"])
    for name, p in eva.named_parameters():
        with torch.no_grad():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif "pos_embed" in name or "cls_token" in name:
                p.copy_(0.5 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))
    ln = torch.nn.LayerNorm(v["hidden_size"])
    mlp0 = torch.nn.Linear(v["hidden_size"], t["hidden_size"])
    mlp2 = torch.nn.Linear(t["hidden_size"], t["hidden_size"])
    with torch.no_grad():
        ln.weight.copy_(1 + 0.1 * torch.randn_like(ln.weight))
        ln.bias.copy_(0.05 * torch.randn_like(ln.bias))
        for m in (mlp0, mlp2):
            m.weight.copy_(0.2 * torch.randn_like(m.weight))
            m.bias.copy_(0.05 * torch.randn_like(m.bias))
    config = LlamaConfig(
        hidden_size=t["hidden_size"], intermediate_size=t["intermediate_size"],
        num_hidden_layers=t["num_hidden_layers"], num_attention_heads=t["num_attention_heads"],
        num_key_value_heads=t["num_key_value_heads"], rms_norm_eps=t["rms_norm_eps"], rope_theta=t["rope_theta"],
        vocab_size=t["vocab_size"], max_position_embeddings=t["max_position_embeddings"],
        bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False, attn_implementation="eager")
    llm = LlamaForCausalLM(config)
    with torch.no_grad():
        for name, p in llm.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
    llm.eval()
    return eva.eval(), ln, mlp0, mlp2, llm


def round_trip(tensor, dtype):
    """The values the Swift side will read from a tensor stored as `dtype` (computation stays f32)."""
    return tensor.to(dtype).to(torch.float32)


def state_dict(eva, ln, mlp0, mlp2, llm, layout):
    vis, lnp, pool, lang, head = layout
    out = {}
    for name, p in eva.named_parameters():
        name = (name.replace("patch.", "patch_embed.proj.").replace(".qkv.", ".attn.qkv.")
                .replace(".q_bias", ".attn.q_bias").replace(".v_bias", ".attn.v_bias").replace(".proj.", ".attn.proj.")
                .replace("patch_embed.attn.proj.", "patch_embed.proj.").replace(".fc1.", ".mlp.fc1.").replace(".fc2.", ".mlp.fc2."))
        out[vis + name] = p.detach().clone()
    out[lnp + "weight"], out[lnp + "bias"] = ln.weight.detach().clone(), ln.bias.detach().clone()
    for i, m in ((0, mlp0), (2, mlp2)):
        out[f"{pool}{i}.weight"], out[f"{pool}{i}.bias"] = m.weight.detach().clone(), m.bias.detach().clone()
    for name, p in llm.model.named_parameters():
        out[lang + name] = p.detach().clone()
    out[head] = llm.lm_head.weight.detach().clone()
    # transformers 4.31 checkpoints carry this buffer; the loader must ignore it.
    out[lang + "layers.0.self_attn.rotary_emb.inv_freq"] = torch.arange(8, dtype=torch.float32)
    return out


def store_dtypes(sd):
    """Mixed storage: matrices of even layers bf16, embeddings f16, the rest f32."""
    stored = {}
    for name, tensor in sd.items():
        if "embed_tokens" in name:
            stored[name] = tensor.to(torch.float16)
        elif tensor.dim() == 2 and (".0." in name or "blocks.0." in name):
            stored[name] = tensor.to(torch.bfloat16)
        else:
            stored[name] = tensor.contiguous()
    return stored


def load_stored(eva, ln, mlp0, mlp2, llm, stored, layout):
    """Puts the stored (rounded) values back into the reference modules, so both sides compute on the same numbers."""
    sd = state_dict(eva, ln, mlp0, mlp2, llm, layout)
    reverse = {}
    for name in sd:
        reverse[name] = stored[name].to(torch.float32)
    with torch.no_grad():
        for (name, p), key in zip(list(eva.named_parameters()), [k for k in sd if k.startswith(layout[0])]):
            p.copy_(reverse[key])
        ln.weight.copy_(reverse[layout[1] + "weight"]); ln.bias.copy_(reverse[layout[1] + "bias"])
        for i, m in ((0, mlp0), (2, mlp2)):
            m.weight.copy_(reverse[f"{layout[2]}{i}.weight"]); m.bias.copy_(reverse[f"{layout[2]}{i}.bias"])
        for name, p in llm.model.named_parameters():
            p.copy_(reverse[layout[3] + name])
        llm.lm_head.weight.copy_(reverse[layout[4]])


# ---------------------------------------------------------------- inputs

def preprocess(path, chat):
    im = Image.open(path).convert("RGB")
    w, h = im.size
    if chat and w != h:
        side = max(w, h)
        canvas = Image.new("RGB", (side, side), tuple(int(x * 255) for x in MEAN))
        canvas.paste(im, ((side - w) // 2, (side - h) // 2))
        im = canvas
    im = im.resize((CONFIG["image_size"],) * 2, Image.BICUBIC)
    arr = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)
    return (arr - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None], (w, h)


def prompt(task, variant, text):
    if variant == "multitask":
        if task == "vqa":
            dropped = set('.!"()*#:;~')
            q = "".join(c for c in text.lower() if c not in dropped).rstrip(" ")
            return f"<image><ImageHere>Question:{q} Short answer:"
        if task == "ground":
            return f"<image><ImageHere><ref>{text}</ref>"
        if task == "chat":  # the first code drop's MME prompt (spec section 5): <image> as text, a trailing space
            return f"{SYSTEM} USER: <image><ImageHere>\n{text} ASSISTANT: "
        return "<image><ImageHere>A short image caption:"
    message = {"caption": "Provide a one-sentence caption for the provided image.",
               "vqa": f"{text}\nAnswer the question using a single word or phrase.",
               "ground": f"Please provide the bounding box coordinate of the region this sentence describes: {text}",
               "chat": text}[task]
    return f"{SYSTEM} USER: <ImageHere>\n{message} ASSISTANT:"


def chunk_ids(sp, text, variant):
    before, after = text.split("<ImageHere>")
    if variant == "multitask":
        return [1] + sp.encode(before), sp.encode(after)
    return [1] + sp.encode(before), sp.encode(after)  # chat: BOS on the first chunk only


# ---------------------------------------------------------------- recording

def record(variant, directory, seed, save):
    eva, ln, mlp0, mlp2, llm = make_weights(seed)
    layout = (("visual_encoder.", "ln_vision.", "pooler.mlp.", "lm_model.model.", "lm_model.lm_head.weight")
              if variant == "multitask" else
              ("model.vision_tower.visual_encoder.", "model.vision_tower.ln_vision.", "model.mm_projector.mlp.",
               "model.", "lm_head.weight"))
    stored = store_dtypes(state_dict(eva, ln, mlp0, mlp2, llm, layout))
    load_stored(eva, ln, mlp0, mlp2, llm, stored, layout)
    os.makedirs(directory, exist_ok=True)
    shutil.copy(TOKENIZER, os.path.join(directory, "tokenizer.model"))
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(dict(CONFIG, variant=variant), f, indent=1)
    save(stored, directory)

    sp = spm.SentencePieceProcessor(model_file=TOKENIZER)
    chat = variant == "chat"
    requests = [
        ("rgb_640x427.jpg", "caption", ""), ("gray_64x48.png", "vqa", "What colour is the bus?"),
        ("rgb_100x37.png", "ground", "the man in red on the left"), ("rgb_640x427.jpg", "chat", "Why is this image interesting?"),
    ]
    images, sizes = {}, {}
    for file, _, _ in requests:
        images[file], sizes[file] = preprocess(os.path.join(IMAGES, file), chat)
    files = list(images)
    with torch.no_grad():
        features = eva(torch.stack([images[f] for f in files]))
        pooled, visual = pool_adapter(features, ln, mlp0, mlp2, CONFIG["image_size"] // 14, CONFIG["pool_out_size"])
    embed = llm.model.embed_tokens
    seqs = []
    for file, task, text in requests:
        before, after = chunk_ids(sp, prompt(task, variant, text), variant)
        with torch.no_grad():
            e = torch.cat([embed(torch.tensor(before)), visual[files.index(file)], embed(torch.tensor(after))])
        seqs.append((e, len(before) + visual.shape[1] + len(after)))
    length = max(n for _, n in seqs)
    pad = embed(torch.tensor([0]))[0]
    embeds = torch.stack([torch.cat([pad.expand(length - n, -1), e]) for e, n in seqs]).detach()
    mask = torch.stack([torch.cat([torch.zeros(length - n), torch.ones(n)]) for _, n in seqs]).long()
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    with torch.no_grad():
        logits = llm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions).logits[:, -1, :]

    def generate(settings, rows):
        with torch.no_grad():
            out = llm.generate(inputs_embeds=embeds[rows], attention_mask=mask[rows], pad_token_id=0, eos_token_id=2,
                               bos_token_id=1, do_sample=False, early_stopping=False, output_scores=True,
                               return_dict_in_generate=True, **settings)
            beams = settings.get("num_beams", 1) > 1
            # Each chosen token's log-probability: beam search's scores are log-softmaxed already, greedy's logits.
            transitions = llm.compute_transition_scores(
                out.sequences, out.scores, out.beam_indices if beams else None, normalize_logits=not beams)
            return out.sequences, transitions.tolist()

    # transformers 4.31 returns the dummy BOS it puts before an embeddings prompt ahead of the new tokens; 5.x
    # returns the new tokens alone.
    skip = generate({"max_new_tokens": 1}, [0])[0].shape[1] - 1

    def run(settings, rows):
        sequences, transitions = generate(settings, rows)
        return up_to_eos(sequences[:, skip:].tolist(), transitions)

    settings = [
        {"max_new_tokens": 12},
        {"max_new_tokens": 10, "min_new_tokens": 6},
        {"max_new_tokens": 9, "num_beams": 3, "length_penalty": 1.0},
        {"max_new_tokens": 10, "num_beams": 5, "length_penalty": 0.0},
        {"max_new_tokens": 8, "num_beams": 2, "length_penalty": 2.0, "min_new_tokens": 3},
    ]
    generations = []
    everyone = list(range(len(requests)))
    for s in settings:
        ids, logprobs = run(s, everyone)
        generations.append({"settings": s, "rows": everyone, "ids": ids, "logprobs": logprobs})
        for row in everyone:  # one at a time: batching must not change a sample's tokens
            ids, logprobs = run(s, [row])
            generations.append({"settings": s, "rows": [row], "ids": ids, "logprobs": logprobs})
    return {
        "variant": variant, "requests": [{"image": f, "task": t, "text": x} for f, t, x in requests],
        "image_files": files, "image_sizes": [sizes[f] for f in files],
        "prompt_ids": [list(chunk_ids(sp, prompt(t, variant, x), variant)) for _, t, x in requests],
        "vision_features": features.reshape(len(files), -1).tolist(),
        "pooled_grid": pooled.reshape(len(files), -1).tolist(),
        "visual_tokens": visual.reshape(len(files), -1).tolist(),
        "prefill_logits": logits.tolist(),
        "generations": generations,
    }


def save_safetensors(stored, directory):
    save_file(stored, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})


def save_sharded(stored, directory):
    names = sorted(stored)
    half = len(names) // 2
    index = {"metadata": {}, "weight_map": {}}
    for i, part in enumerate((names[:half], names[half:])):
        file = f"model-0000{i + 1}-of-00002.safetensors"
        save_file({n: stored[n] for n in part}, os.path.join(directory, file), metadata={"format": "pt"})
        index["weight_map"].update({n: file for n in part})
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=1)


def save_bin(stored, directory):
    torch.save(stored, os.path.join(directory, "pytorch_model.bin"))


def main(out):
    os.makedirs(out, exist_ok=True)
    fixtures = {
        "transformers": __import__("transformers").__version__, "torch": torch.__version__,
        "multitask": record("multitask", os.path.join(out, "multitask"), 11, save_safetensors),
        "chat": record("chat", os.path.join(out, "chat"), 12, save_bin),
    }
    record("multitask", os.path.join(out, "multitask-sharded"), 11, save_sharded)
    with open(os.path.join(out, "engine_cases.json"), "w") as f:
        json.dump(fixtures, f)
    print("wrote", out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/GenerationTests/Fixtures")
