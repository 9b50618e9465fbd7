#!/usr/bin/env python3
"""Converts the LLaMA part of an InfMLLM checkpoint to GGUF files for llama.cpp (a CPU reference for the decoder).

    llama_to_gguf.py CHECKPOINT_DIR OUT_DIR [--types bf16,q8_0] [--llama-cpp DIR] [--hf-dir DIR]

CHECKPOINT_DIR is one of ours (`infmllm model init ...` or a released one): config.json with nested "vision" and
"text" sections, model.safetensors, tokenizer.model. The script

1. writes a Hugging Face LlamaForCausalLM directory: config.json (architectures LlamaForCausalLM, the "text" sizes,
   torch_dtype from the stored dtype, bfloat16 for our bf16 checkpoints), model.safetensors holding only the decoder
   under `model.*` and `lm_head.weight` (the raw bytes are copied, no dtype conversion), and the checkpoint's
   tokenizer.model. Multitask checkpoints name the decoder `lm_model.model.*` / `lm_model.lm_head.weight`, chat
   checkpoints `model.*` / `lm_head.weight` (see Sources/Models/CheckpointLayout.swift); the vision tower, ln_vision
   and the pool adapter are left out;
2. runs llama.cpp's convert_hf_to_gguf.py on it once per output type, writing OUT_DIR/llama-TYPE.gguf, and prints
   each file's path on stdout.

Vocabulary: our tokenizer.model has 1,400 pieces while the 7b and slice presets have vocab_size 32,000.
convert_hf_to_gguf.py (`_create_vocab_sentencepiece`) sizes the GGUF vocabulary by config.json's vocab_size and
fills the ids past the tokenizer's last piece with `[PAD<id>]` tokens of type UNUSED (score -10000), so the
embedding and output matrices keep all 32,000 rows and llama.cpp's compute cost matches the real model. The pad
tokens are never produced by the tokenizer; llama-bench and llama-batched-bench draw random ids and don't care.

The step 1 half needs only the Python standard library; step 2 needs llama.cpp's source and a virtual environment
for its converter (which imports torch and transformers). Setup used for this project (outside the repository):

    # llama.cpp's source at /work/llama.cpp, from the llama-cpp-python sdist on PyPI (it vendors llama.cpp):
    # (--no-binary for this package only: with :all: pip also builds its build tools, cmake among them, from source)
    pip download --no-deps --no-binary llama-cpp-python llama-cpp-python -d /tmp/lcpp
    tar -xzf /tmp/lcpp/llama_cpp_python-*.tar.gz -C /tmp/lcpp
    mkdir -p /work/llama.cpp && cp -a /tmp/lcpp/llama_cpp_python-*/vendor/llama.cpp/. /work/llama.cpp/
    rm -f /work/llama.cpp/.git          # a submodule pointer to a gitdir that the sdist does not ship

    python3 -m venv /work/venv-llama
    # torch: a CPU-only wheel (about 190 MB) where one is at hand, e.g. /opt/wheels/torch-*+cpu-*.whl on our
    # machines; `pip install torch` from PyPI brings the CUDA build and several GB of nvidia-* wheels.
    /work/venv-llama/bin/pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
    /work/venv-llama/bin/pip install numpy safetensors sentencepiece "transformers==4.57.6" \\
        "protobuf>=4.21.0,<5.0.0" /work/llama.cpp/gguf-py

(transformers and protobuf as pinned by llama.cpp's requirements/requirements-convert_hf_to_gguf.txt; the
converter puts llama.cpp's own gguf-py first on sys.path anyway.) Then:

    /work/venv-llama/bin/python tools/bench/llama_to_gguf.py /tmp/ckpt-bench /tmp/gguf-bench

The converter runs under the interpreter that runs this script unless --python names another.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

# Where each variant keeps the decoder (Sources/Models/CheckpointLayout.swift).
LAYOUTS = {
    "multitask": ("lm_model.model.", "lm_model.lm_head.weight"),
    "chat": ("model.", "lm_head.weight"),
}
TORCH_DTYPES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}
DECODER_PART = re.compile(r"^(embed_tokens\.weight|norm\.weight|layers\.\d+\.)")


def read_safetensors_header(path: Path) -> tuple[dict, int]:
    """The header's tensor entries and the offset where the data section starts."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    header.pop("__metadata__", None)
    return header, 8 + length


def copy_range(src, dst, start: int, count: int, chunk: int = 64 << 20) -> None:
    src.seek(start)
    while count > 0:
        data = src.read(min(chunk, count))
        if not data:
            raise IOError("model.safetensors ends inside a tensor")
        dst.write(data)
        count -= len(data)


def write_hf_llama(checkpoint: Path, out: Path) -> dict:
    """Writes the LlamaForCausalLM directory; returns its config."""
    config = json.loads((checkpoint / "config.json").read_text())
    text = config["text"]
    variant = config.get("variant", "multitask")
    if variant not in LAYOUTS:
        raise SystemExit(f"{checkpoint}/config.json: unknown variant {variant!r}")
    prefix, lm_head = LAYOUTS[variant]

    source = checkpoint / "model.safetensors"
    header, data_start = read_safetensors_header(source)
    # (new name, entry) in the checkpoint's order, decoder tensors only.
    selected = []
    for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
        if name.endswith("rotary_emb.inv_freq"):
            continue
        if name == lm_head:
            selected.append(("lm_head.weight", entry))
        elif name.startswith(prefix) and DECODER_PART.match(name[len(prefix):]):
            selected.append(("model." + name[len(prefix):], entry))
    names = {new for new, _ in selected}

    hidden, vocab, layers = text["hidden_size"], text["vocab_size"], text["num_hidden_layers"]
    expected = {"model.embed_tokens.weight": [vocab, hidden], "lm_head.weight": [vocab, hidden],
                "model.norm.weight": [hidden]}
    for index in range(layers):
        expected[f"model.layers.{index}.self_attn.q_proj.weight"] = [hidden, hidden]
    for name, shape in expected.items():
        if name not in names:
            raise SystemExit(f"{source}: no decoder tensor for {name} (variant {variant}, prefix {prefix!r})")
        found = next(entry["shape"] for new, entry in selected if new == name)
        if found != shape:
            raise SystemExit(f"{source}: {name} has shape {found}, config.json says {shape}")
    dtypes = {entry["dtype"] for _, entry in selected}
    if len(dtypes) != 1 or next(iter(dtypes)) not in TORCH_DTYPES:
        raise SystemExit(f"{source}: decoder tensors have dtypes {sorted(dtypes)}, expected one of BF16, F16, F32")
    dtype = next(iter(dtypes))

    out.mkdir(parents=True, exist_ok=True)
    new_header, offset = {}, 0
    for new, entry in selected:
        begin, end = entry["data_offsets"]
        size = end - begin
        new_header[new] = {"dtype": entry["dtype"], "shape": entry["shape"], "data_offsets": [offset, offset + size]}
        offset += size
    new_header["__metadata__"] = {"format": "pt"}
    encoded = json.dumps(new_header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(source, "rb") as src, open(out / "model.safetensors", "wb") as dst:
        dst.write(struct.pack("<Q", len(encoded)))
        dst.write(encoded)
        for _, entry in selected:
            begin, end = entry["data_offsets"]
            copy_range(src, dst, data_start + begin, end - begin)

    heads = text["num_attention_heads"]
    hf_config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": text["intermediate_size"],
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": text.get("num_key_value_heads") or heads,
        "head_dim": hidden // heads,
        "rms_norm_eps": text["rms_norm_eps"],
        "rope_theta": text.get("rope_theta") or 10000.0,
        "rope_scaling": None,
        "vocab_size": vocab,
        "max_position_embeddings": text["max_position_embeddings"],
        "bos_token_id": text["bos_token_id"],
        "eos_token_id": text["eos_token_id"],
        "pad_token_id": text.get("pad_token_id", 0),
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "initializer_range": 0.02,
        "use_cache": True,
        "torch_dtype": TORCH_DTYPES[dtype],
    }
    (out / "config.json").write_text(json.dumps(hf_config, indent=2) + "\n")
    shutil.copyfile(checkpoint / "tokenizer.model", out / "tokenizer.model")
    return hf_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="an InfMLLM checkpoint directory")
    parser.add_argument("out", type=Path, help="where llama-TYPE.gguf files go (created if missing)")
    parser.add_argument("--types", default="bf16,q8_0", help="convert_hf_to_gguf --outtype values (default bf16,q8_0)")
    parser.add_argument("--llama-cpp", type=Path, default=Path(os.environ.get("LLAMA_CPP_DIR", "/work/llama.cpp")),
                        help="llama.cpp source tree (default $LLAMA_CPP_DIR or /work/llama.cpp)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for convert_hf_to_gguf.py")
    parser.add_argument("--hf-dir", type=Path, help="keep the intermediate LlamaForCausalLM directory here")
    args = parser.parse_args()

    converter = args.llama_cpp / "convert_hf_to_gguf.py"
    if not converter.is_file():
        raise SystemExit(f"{converter} not found (set --llama-cpp or LLAMA_CPP_DIR)")
    args.out.mkdir(parents=True, exist_ok=True)
    temporary = None
    hf_dir = args.hf_dir
    if hf_dir is None:
        temporary = tempfile.TemporaryDirectory(prefix="hf-llama-", dir=args.out)
        hf_dir = Path(temporary.name)
    try:
        config = write_hf_llama(args.checkpoint, hf_dir)
        try:
            import sentencepiece  # noqa: F401  (only to warn early when run outside the converter's venv)

            processor = sentencepiece.SentencePieceProcessor(model_file=str(hf_dir / "tokenizer.model"))
            pieces = processor.vocab_size()
            if pieces < config["vocab_size"]:
                print(f"note: tokenizer.model has {pieces} pieces, vocab_size is {config['vocab_size']}: "
                      f"ids {pieces}..{config['vocab_size'] - 1} become [PAD<id>] tokens", file=sys.stderr)
        except ImportError:
            pass
        for outtype in [t for t in args.types.split(",") if t]:
            outfile = (args.out / f"llama-{outtype}.gguf").resolve()
            command = [args.python, str(converter), str(hf_dir), "--outtype", outtype, "--outfile", str(outfile),
                       "--model-name", f"infmllm-llama-{args.checkpoint.resolve().name}"]
            result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if result.returncode != 0:
                sys.stderr.write(result.stdout)
                raise SystemExit(f"convert_hf_to_gguf.py --outtype {outtype} failed ({result.returncode})")
            print(outfile)
    finally:
        if temporary is not None:
            temporary.cleanup()


if __name__ == "__main__":
    main()
