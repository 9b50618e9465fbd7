"""The PyTorch side of the side-by-side benchmark: the same checkpoint (any preset written by
`infmllm model init`, or any checkpoint of our format) in PyTorch modules, timed phase by phase, on the CPU
or (--device cuda) on an NVIDIA GPU.

    python tools/bench/torch_reference.py CHECKPOINT_DIR --threads 2 --dtype bf16|f32 \
        [--images 1,8] [--batches 1,8] [--new-tokens 16] [--prompt-tokens 280] [--repeats 2] [--attn sdpa|eager]
    python tools/bench/torch_reference.py CHECKPOINT_DIR --device cuda --dtype bf16|f32 \
        --images 1,8,32 --batches 1,8,32,64 [...]

The networks: the EVA ViT and pool-adapter of tools/reference/engine_fixtures.py (written there from the spec;
imported from that file, which has no side effects at import) and transformers' LlamaForCausalLM from a
LlamaConfig that matches config.json "text". Sizes all come from config.json.

dtype: `f32` computes in float32 whatever the stored element types; `bf16` holds every weight in bfloat16 and
computes in it, as `model.to(torch.bfloat16)` would (each tensor is cast on load, which gives the same values
without a float32 copy of the whole model first). The rotary `inv_freq` buffer stays float32, as
`from_pretrained(..., dtype=torch.bfloat16)` leaves it.

device: `cpu` (default) runs on torch.set_num_threads(--threads) threads; `cuda` loads the weights as above, moves
the model to the first GPU and makes the inputs there (--threads then only bounds host-side work). On cuda TF32 is
off (torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32 = False), so `f32` is exact float32
arithmetic as on the CPU, and `bf16` holds bfloat16 weights as above.

Measured under torch.inference_mode() with time.perf_counter (on cuda after torch.cuda.synchronize(), so each
time covers the GPU work queued before it), after one warm-up run, best of --repeats:
  vision   N random image_size x image_size images, one batch, through the ViT + ln_vision + pooler: images/s;
  prefill  B sequences of --prompt-tokens random input embeddings through the LLaMA with use_cache=True and
           logits of the last position only (logits_to_keep=1, as `generate` asks for): tokens/s = B*T/seconds;
  decode   after that prefill, --new-tokens greedy steps feeding the argmax tokens with past_key_values:
           tokens/s = B*steps/seconds, and step_seconds = seconds/steps.
One JSON object per line on stdout; the first line names the versions. Every line carries "device": `cpu`, or
torch.cuda.get_device_name() on cuda.

Environment (outside the repository; the CPU-only torch build avoids several GB of CUDA wheels):

    python3 -m venv /work/venv-bench
    /work/venv-bench/bin/pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl \
        transformers safetensors numpy sentencepiece pillow

(where no local +cpu wheel is at hand, install `torch` from PyTorch's own CPU wheel index instead; the plain PyPI
`torch` wheel for x86_64 Linux pulls in the nvidia-* CUDA wheels.) pillow is needed only because
engine_fixtures.py imports it. For --device cuda the environment needs a CUDA build of torch instead.
"""

import argparse
import importlib.util
import inspect
import json
import os
import sys
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16}
LAYOUTS = {  # vision, ln_vision, pooler, language, lm_head: Sources/Models/CheckpointLayout.swift
    "multitask": [("visual_encoder.", "ln_vision.", "pooler.mlp.", "lm_model.model.", "lm_model.lm_head.weight")],
    "chat": [
        ("model.vision_tower.visual_encoder.", "model.vision_tower.ln_vision.", "model.mm_projector.mlp.", "model.",
         "lm_head.weight"),
        ("model.vision_tower.", "model.ln_vision.", "model.mm_projector.mlp.", "model.", "lm_head.weight"),
        ("model.vision_tower.vision_tower.", "model.vision_tower.ln_vision.", "model.mm_projector.mlp.", "model.",
         "lm_head.weight"),
    ],
}


def import_reference():
    path = os.path.join(ROOT, "tools", "reference", "engine_fixtures.py")
    spec = importlib.util.spec_from_file_location("engine_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ref = import_reference()
# transformers 5.x renamed `past_key_values` (argument and output field) to `cache`; accept either.
CACHE = "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"


# ---------------------------------------------------------------- checkpoint

def read_tensors(directory):
    """Every tensor of the checkpoint, in its stored dtype: model.safetensors, a sharded index, or pytorch_model.bin."""
    from safetensors.torch import load_file
    single = os.path.join(directory, "model.safetensors")
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(single):
        return load_file(single)
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        tensors = {}
        for file in files:
            tensors.update(load_file(os.path.join(directory, file)))
        return tensors
    return torch.load(os.path.join(directory, "pytorch_model.bin"), map_location="cpu", weights_only=True)


def eva_checkpoint_name(name):
    """engine_fixtures.EVA's parameter name -> the checkpoint's, the renaming of engine_fixtures.state_dict."""
    return (name.replace("patch.", "patch_embed.proj.").replace(".qkv.", ".attn.qkv.")
            .replace(".q_bias", ".attn.q_bias").replace(".v_bias", ".attn.v_bias").replace(".proj.", ".attn.proj.")
            .replace("patch_embed.attn.proj.", "patch_embed.proj.").replace(".fc1.", ".mlp.fc1.")
            .replace(".fc2.", ".mlp.fc2."))


def llama_config(text, attn):
    heads = text["num_attention_heads"]
    return LlamaConfig(
        hidden_size=text["hidden_size"], intermediate_size=text["intermediate_size"],
        num_hidden_layers=text["num_hidden_layers"], num_attention_heads=heads,
        num_key_value_heads=text.get("num_key_value_heads") or heads, rms_norm_eps=text["rms_norm_eps"],
        rope_theta=float(text.get("rope_theta", 10000.0)), vocab_size=text["vocab_size"],
        max_position_embeddings=text["max_position_embeddings"], bos_token_id=text.get("bos_token_id", 1),
        eos_token_id=text.get("eos_token_id", 2), pad_token_id=text.get("pad_token_id", 0),
        tie_word_embeddings=False, attn_implementation=attn)


class Model:
    """EVA ViT + ln_vision + pooler + LlamaForCausalLM, weights from a checkpoint directory, in one dtype."""

    def __init__(self, directory, dtype, attn="sdpa", device="cpu"):
        with open(os.path.join(directory, "config.json")) as f:
            self.config = config = json.load(f)
        vision, text = config["vision"], config["text"]
        self.dtype = dtype
        self.device = torch.device(device)
        self.image_size = config["image_size"]
        self.grid = config["image_size"] // vision["patch_size"]
        self.pool = config["pool_out_size"]
        tensors = read_tensors(directory)
        layout = self.detect_layout(config.get("variant", "multitask"), tensors)
        vis, lnp, pool, lang, head = layout

        with torch.device("meta"):  # no random init: every parameter comes from the checkpoint
            self.eva = ref.EVA(vision, config["image_size"])
            self.ln = torch.nn.LayerNorm(vision["hidden_size"], eps=config.get("ln_vision_eps", 1e-5))
            self.mlp0 = torch.nn.Linear(vision["hidden_size"], text["hidden_size"])
            self.mlp2 = torch.nn.Linear(text["hidden_size"], text["hidden_size"])
            self.llm = LlamaForCausalLM(llama_config(text, attn))
        used = set()

        def take(name):
            used.add(name)
            if name not in tensors:
                raise KeyError(f"{directory}: tensor {name} missing")
            return tensors[name].to(dtype)  # stored dtype -> dtype, one rounding (as model.to(dtype) after f32)

        def load(module, names):
            module.load_state_dict({own: take(stored) for own, stored in names.items()}, strict=True, assign=True)

        load(self.eva, {n: vis + eva_checkpoint_name(n) for n, _ in self.eva.named_parameters()})
        load(self.ln, {"weight": lnp + "weight", "bias": lnp + "bias"})
        load(self.mlp0, {"weight": pool + "0.weight", "bias": pool + "0.bias"})
        load(self.mlp2, {"weight": pool + "2.weight", "bias": pool + "2.bias"})
        names = {"model." + n: lang + n for n, _ in self.llm.model.named_parameters()}
        names["lm_head.weight"] = head
        load(self.llm, names)
        self.llm.model.rotary_emb = LlamaRotaryEmbedding(self.llm.config)  # float32 inv_freq, computed on the CPU
        left = [n for n in tensors if n not in used and not n.endswith("rotary_emb.inv_freq")]
        if left:
            raise ValueError(f"{directory}: tensors this reference does not use: {left[:8]}")
        for m in (self.eva, self.ln, self.mlp0, self.mlp2, self.llm):
            meta = [n for n, t in list(m.named_parameters()) + list(m.named_buffers()) if t.is_meta]
            if meta:
                raise ValueError(f"never loaded: {meta[:8]}")
            m.to(self.device).eval()  # in place; inv_freq moves but stays float32

    @staticmethod
    def detect_layout(variant, tensors):
        for layout in LAYOUTS[variant]:
            vis, lnp, pool, _, head = layout
            if all(n in tensors for n in (vis + "cls_token", lnp + "weight", pool + "0.weight", head)):
                return layout
        raise ValueError(f"no {variant} layout matches the checkpoint's tensor names")

    def visual_tokens(self, images):
        """images [N, 3, S, S] -> visual tokens [N, P*P, text hidden]."""
        features = self.eva(images)
        return ref.pool_adapter(features, self.ln, self.mlp0, self.mlp2, self.grid, self.pool)[1]


# ---------------------------------------------------------------- timing

def clock(device):
    """time.perf_counter once the work queued on `device` is done (CUDA launches return before the GPU finishes)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def best_time(fn, repeats, device):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = clock(device)
        fn()
        best = min(best, clock(device) - start)
    return best


def generate_times(model, batch, prompt_tokens, new_tokens, repeats):
    """(prefill seconds, decode seconds), each the best of `repeats` after one warm-up of both."""
    width = model.config["text"]["hidden_size"]
    embeds = torch.randn(batch, prompt_tokens, width, dtype=model.dtype, device=model.device)
    best_prefill = best_decode = float("inf")
    for attempt in range(repeats + 1):
        start = clock(model.device)
        out = model.llm(inputs_embeds=embeds, use_cache=True, logits_to_keep=1)
        prefill = clock(model.device) - start
        cache, logits = getattr(out, CACHE), out.logits
        start = clock(model.device)
        for _ in range(new_tokens):
            token = logits[:, -1, :].argmax(dim=-1, keepdim=True)
            out = model.llm(input_ids=token, use_cache=True, **{CACHE: cache})
            cache, logits = getattr(out, CACHE), out.logits
        decode = clock(model.device) - start
        if attempt > 0:  # the first pass is the warm-up
            best_prefill, best_decode = min(best_prefill, prefill), min(best_decode, decode)
    return best_prefill, best_decode


def counts(text):
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="f32")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="where the model runs (default cpu; cuda: the first NVIDIA GPU, TF32 off)")
    parser.add_argument("--images", type=counts, default=[1, 8],
                        help="image counts for the vision phase: 1,8 (any list, e.g. 1,8,32 on cuda)")
    parser.add_argument("--batches", type=counts, default=[1, 8],
                        help="batch sizes for prefill and decode: 1,8 (any list, e.g. 1,8,32,64 on cuda)")
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--prompt-tokens", type=int, default=280)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa",
                        help="transformers' attention implementation (default sdpa, transformers' own default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False (no GPU, or a CPU-only torch build)")

    torch.set_num_threads(args.threads)  # the CPU's compute threads; on cuda only host-side work
    torch.manual_seed(args.seed)
    dtype = DTYPES[args.dtype]
    device = torch.device(args.device)
    if device.type == "cuda":  # no TF32: f32 stays exact float32 products, as on the CPU
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"

    def emit(**fields):
        print(json.dumps(fields), flush=True)

    emit(impl="torch", version=torch.__version__, transformers=transformers.__version__,
         threads=torch.get_num_threads(), attn=args.attn, device=device_name)
    start = clock(device)
    model = Model(args.checkpoint, dtype, args.attn, device)
    print(f"loaded {args.checkpoint} in {clock(device) - start:.2f} s", file=sys.stderr, flush=True)
    common = {"impl": "torch", "dtype": args.dtype, "threads": args.threads, "device": device_name}
    size = model.image_size
    with torch.inference_mode():
        for n in args.images:
            images = torch.randn(n, 3, size, size, dtype=dtype, device=device)
            seconds = best_time(lambda: model.visual_tokens(images), args.repeats, device)
            emit(**common, phase="vision", batch=n, seconds=seconds, per_s=n / seconds)
        for b in args.batches:
            prefill, decode = generate_times(model, b, args.prompt_tokens, args.new_tokens, args.repeats)
            emit(**common, phase="prefill", batch=b, seconds=prefill, per_s=b * args.prompt_tokens / prefill,
                 prompt_tokens=args.prompt_tokens)
            emit(**common, phase="decode", batch=b, seconds=decode, per_s=b * args.new_tokens / decode,
                 steps=args.new_tokens, step_seconds=decode / args.new_tokens, prompt_tokens=args.prompt_tokens)


if __name__ == "__main__":
    main()
