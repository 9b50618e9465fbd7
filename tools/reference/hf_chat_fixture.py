"""The chat fixture re-saved as a Hugging Face repository of InfMLLM-7B-Chat would hold it (transformers 4.31 era).

Reads Tests/GenerationTests/Fixtures/chat/ (our own config.json with nested "vision" and "text" sections, a single
PyTorch pytorch_model.bin and tokenizer.model) and writes the SAME weights, in the layout of the published
checkpoint, to Tests/GenerationTests/Fixtures/chat-hf/ (or the directory given as the only argument):

    config.json                        InfMLLMChatConfig, LLaVA-like: flat LLaMA keys from our "text" section,
                                       image_size, pool_out_size, mm_hidden_size (= vision hidden_size),
                                       model_type "infmllm_chat", architectures, auto_map, torch_dtype bfloat16,
                                       transformers_version 4.31.0, use_cache; plus "infmllm_vision" (see below).
    pytorch_model-00001-of-00002.bin   torch.save (default zipfile format) of a dict: the language model tensors
                                       (model.embed_tokens, model.layers.*, model.norm, lm_head).
    pytorch_model-00002-of-00002.bin   everything else: model.vision_tower.visual_encoder.*,
                                       model.vision_tower.ln_vision.*, model.mm_projector.mlp.*.
    pytorch_model.bin.index.json       {"metadata": {"total_size": N}, "weight_map": {name: shard file}}, where N is
                                       the sum of the tensors' byte sizes (numel * element size), as transformers'
                                       shard_checkpoint computes it (not the size of the files).
    tokenizer.model                    copied unchanged from the chat fixture.
    tokenizer_config.json              {"tokenizer_class": "LlamaTokenizer", "use_fast": false, "legacy": false}
    special_tokens_map.json            <s>, </s>, <unk>.

Tensor names are unchanged from the chat fixture (they already use the HF names). Every tensor of 2 or more
dimensions is cast to bfloat16 (the chat fixture mixes f32, bf16 and an f16 embedding table, so the f32 and f16
ones are rounded here: the values are those of `tensor.to(torch.bfloat16)`); 1-D tensors (biases, norm weights,
q_bias/v_bias, rotary_emb.inv_freq) keep their dtype (all float32).

"infmllm_vision": real InfMLLM checkpoints have no vision settings in config.json -- the vision tower is EVA ViT-g
(patch 14, width 1408, 39 layers, 16 heads, MLP 6144, LayerNorm eps 1e-6), fixed by the architecture, and a loader
uses those fixed settings when the key is absent. Only this tiny fixture's vision tower differs, so its settings are
written under this one extra, non-standard key: our config's "vision" object verbatim.

Deterministic (no randomness; torch.save's zip records carry no timestamps). Run from the repository root:

    venv/bin/python tools/reference/hf_chat_fixture.py [Tests/GenerationTests/Fixtures/chat-hf]

(needs torch; /work/venv-bench/bin/python works too.) It re-reads what it wrote and checks it before finishing.
"""

import json
import os
import shutil
import sys

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SOURCE = os.path.join(ROOT, "Tests", "GenerationTests", "Fixtures", "chat")
DEFAULT_OUT = os.path.join(ROOT, "Tests", "GenerationTests", "Fixtures", "chat-hf")

SHARDS = ("pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin")
LANGUAGE_PREFIXES = ("model.embed_tokens.", "model.layers.", "model.norm.", "lm_head.")
OTHER_PREFIXES = ("model.vision_tower.visual_encoder.", "model.vision_tower.ln_vision.", "model.mm_projector.mlp.")
TEXT_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
             "rms_norm_eps", "rope_theta", "vocab_size", "max_position_embeddings", "bos_token_id", "eos_token_id",
             "pad_token_id")


def hf_config(ours):
    text = ours["text"]
    config = {key: text[key] for key in TEXT_KEYS}
    config.update({
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "image_size": ours["image_size"],
        "pool_out_size": ours["pool_out_size"],
        "mm_hidden_size": ours["vision"]["hidden_size"],
        "model_type": "infmllm_chat",
        "architectures": ["InfMLLMChatForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_infmllm_chat.InfMLLMChatConfig",
            "AutoModelForCausalLM": "modeling_infmllm_chat.InfMLLMChatForCausalLM",
        },
        "torch_dtype": "bfloat16",
        "transformers_version": "4.31.0",
        "use_cache": True,
        # Not in real checkpoints (EVA ViT-g's settings are fixed); this tiny fixture's vision tower, verbatim.
        "infmllm_vision": ours["vision"],
    })
    return config


def convert(tensor):
    """Matrices (2-D and up) to bfloat16, 1-D tensors kept as they are; always an own, contiguous storage."""
    if tensor.dim() >= 2:
        return tensor.to(torch.bfloat16).contiguous().clone()
    return tensor.contiguous().clone()


def shard_of(name):
    if name.startswith(LANGUAGE_PREFIXES):
        return 0
    if name.startswith(OTHER_PREFIXES):
        return 1
    raise ValueError(f"unexpected tensor name {name!r}")


def write_json(path, obj):
    # transformers' to_json_file / save_pretrained: indent 2, sorted keys, trailing newline.
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def main(out):
    with open(os.path.join(SOURCE, "config.json")) as f:
        ours = json.load(f)
    source = torch.load(os.path.join(SOURCE, "pytorch_model.bin"), map_location="cpu", weights_only=True)

    shards = ({}, {})
    for name, tensor in source.items():  # original order kept within each shard
        shards[shard_of(name)][name] = convert(tensor)

    os.makedirs(out, exist_ok=True)
    weight_map, total_size = {}, 0
    for file, tensors in zip(SHARDS, shards):
        torch.save(tensors, os.path.join(out, file))  # default (zipfile) serialization, as transformers 4.31
        for name, tensor in tensors.items():
            weight_map[name] = file
            total_size += tensor.numel() * tensor.element_size()
    write_json(os.path.join(out, "pytorch_model.bin.index.json"),
               {"metadata": {"total_size": total_size}, "weight_map": weight_map})

    config = hf_config(ours)
    write_json(os.path.join(out, "config.json"), config)
    shutil.copyfile(os.path.join(SOURCE, "tokenizer.model"), os.path.join(out, "tokenizer.model"))
    write_json(os.path.join(out, "tokenizer_config.json"),
               {"tokenizer_class": "LlamaTokenizer", "use_fast": False, "legacy": False})
    write_json(os.path.join(out, "special_tokens_map.json"),
               {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"})

    check(out, source, config)
    for file, tensors in zip(SHARDS, shards):
        print(f"{file}: {len(tensors)} tensors")
        for name, tensor in tensors.items():
            print(f"  {name} {tuple(tensor.shape)} {str(tensor.dtype).replace('torch.', '')}"
                  f" (was {str(source[name].dtype).replace('torch.', '')})")
    print(f"total_size {total_size}")
    for file in sorted(os.listdir(out)):
        print(f"{os.path.getsize(os.path.join(out, file)):>9}  {file}")
    print("wrote", os.path.normpath(out))


def check(out, source, config):
    """Re-reads the output: every source tensor once, in the shard the index names, with the expected values."""
    with open(os.path.join(out, "pytorch_model.bin.index.json")) as f:
        index = json.load(f)
    seen, total = {}, 0
    for file in SHARDS:
        loaded = torch.load(os.path.join(out, file), map_location="cpu", weights_only=True)
        for name, tensor in loaded.items():
            assert name not in seen and index["weight_map"][name] == file, name
            seen[name] = tensor
            total += tensor.numel() * tensor.element_size()
    assert set(seen) == set(source) == set(index["weight_map"]), "tensor names differ"
    assert total == index["metadata"]["total_size"]
    for name, original in source.items():
        tensor = seen[name]
        assert tensor.shape == original.shape, name
        if original.dim() >= 2:
            assert tensor.dtype == torch.bfloat16 and torch.equal(tensor, original.to(torch.bfloat16)), name
        else:
            assert tensor.dtype == original.dtype and torch.equal(tensor, original), name
    with open(os.path.join(out, "config.json")) as f:
        assert json.load(f) == config


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT)
