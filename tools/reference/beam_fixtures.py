"""Beam search fixtures from transformers' own `generate`, on scripted models whose logits end sequences often.

The random-weight checkpoints of engine_fixtures.py never produce EOS, so they cannot tell apart the beam search
rules of transformers releases, which differ in how finished hypotheses are scored and when a search stops. Here
each case is a tiny scripted "model": the logit of token t after a sequence of n generated tokens ending in `prev`
is a function of (seed, n, prev, t) that the Swift test computes the same way, bit for bit (SplitMix64, then a
double, then float32), with a bias on EOS so that hypotheses finish at every step. Each case records the ids and
the sum of their log-probabilities (`compute_transition_scores`). `generate` starts from
input_ids [[BOS]], as it does for an inputs_embeds prompt (one dummy BOS), so lengths count as they do for the
real model.

Run once per release, each in its own virtual environment:

    python3 -m venv venv431 && venv431/bin/pip install torch "numpy<2" transformers==4.31.0
    venv431/bin/python tools/reference/beam_fixtures.py Tests/GenerationTests/Fixtures/beam_cases_4.31.json
    python3 -m venv venv5 && venv5/bin/pip install torch transformers
    venv5/bin/python tools/reference/beam_fixtures.py Tests/GenerationTests/Fixtures/beam_cases_5.json
"""

import json
import random
import sys

import numpy as np
import torch
import transformers
from transformers import GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

MASK = (1 << 64) - 1
BOS, EOS, PAD = 1, 2, 0


def splitmix(x):
    """The first output of SplitMix64 seeded with x (Tensors.SplitMix64 in Swift)."""
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def logit(case, step, prev, token):
    x = case["seed"]
    for value in (step, prev, token):
        x = splitmix(x ^ value)
    u = (x >> 11) * 2.0 ** -53
    value = case["spread"] * (2.0 * u - 1.0)
    if token == EOS:
        value += case["eos_bias"]
    return np.float32(value)


class ScriptedConfig(PretrainedConfig):
    model_type = "scripted"


class Scripted(PreTrainedModel, GenerationMixin):
    config_class = ScriptedConfig

    def __init__(self, config, case):
        super().__init__(config)
        self.case = case
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        rows = []
        step = input_ids.shape[1] - 1
        for prev in input_ids[:, -1].tolist():
            rows.append([logit(self.case, step, prev, t) for t in range(self.case["vocab"])])
        last = torch.tensor(np.array(rows, dtype=np.float32))
        return CausalLMOutputWithPast(logits=last[:, None, :].expand(-1, input_ids.shape[1], -1))

    def prepare_inputs_for_generation(self, input_ids, **kwargs):
        return {"input_ids": input_ids}


def run(case):
    config = ScriptedConfig(vocab_size=case["vocab"], bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
    model = Scripted(config, case).eval()
    settings = case["settings"]
    with torch.no_grad():
        out = model.generate(
            input_ids=torch.tensor([[BOS]]), attention_mask=torch.ones(1, 1, dtype=torch.long), do_sample=False,
            early_stopping=False, use_cache=False, eos_token_id=EOS, pad_token_id=PAD, bos_token_id=BOS,
            output_scores=True, return_dict_in_generate=True, **settings)
        beams = settings.get("num_beams", 1) > 1
        # Each chosen token's log-probability: beam search's scores are log-softmaxed already, greedy's are logits.
        transitions = model.compute_transition_scores(
            out.sequences, out.scores, out.beam_indices if beams else None, normalize_logits=not beams)[0].tolist()
    ids, logprob = [], 0.0
    for token, transition in zip(out.sequences[0, 1:].tolist(), transitions):  # after the prompt's BOS
        ids.append(token)
        logprob += transition
        if token == EOS:
            break
    return ids, logprob


def cases(count):
    rng = random.Random(20261204)
    made = []
    for index in range(count):
        beams = rng.choice([1, 2, 3, 4, 5])
        vocab = rng.randint(max(6, 2 * beams + 1), 16)
        max_new = rng.randint(1, 12)
        settings = {"max_new_tokens": max_new, "num_beams": beams,
                    "length_penalty": rng.choice([0.0, 0.5, 1.0, 1.5, 2.0, -1.0])}
        if rng.random() < 0.3:
            settings["min_new_tokens"] = rng.randint(1, max_new)
        if rng.random() < 0.2:
            # The evaluation scripts' form: lengths that count the dummy BOS (max_length 30 is 29 new tokens).
            settings["max_length"] = settings.pop("max_new_tokens") + 1
            if "min_new_tokens" in settings:
                settings["min_length"] = settings.pop("min_new_tokens") + 1
        made.append({"seed": rng.getrandbits(48), "vocab": vocab, "spread": rng.choice([2.0, 3.0, 4.0]),
                     "eos_bias": rng.choice([0.0, 1.0, 2.0, 3.0]), "settings": settings})
    return made


def main(out):
    recorded = []
    for case in cases(400):
        case["ids"], case["logprob"] = run(case)
        recorded.append(case)
    ended = sum(1 for c in recorded if c["ids"] and c["ids"][-1] == EOS)
    with open(out, "w") as f:
        json.dump({"transformers": transformers.__version__, "torch": torch.__version__, "bos": BOS, "eos": EOS,
                   "cases": recorded}, f)
    print(f"wrote {out}: {len(recorded)} cases, {ended} ending with EOS")


if __name__ == "__main__":
    main(sys.argv[1])
