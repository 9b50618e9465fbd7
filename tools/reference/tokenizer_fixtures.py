"""Trains the repository's small LLaMA-style SentencePiece tokenizer and records what the reference
implementations do with it, for the Swift tokenizer's golden tests.

Reference implementations: Python `sentencepiece` (encode and decode) and Hugging Face's slow
`LlamaTokenizer` of transformers 4.31.0, the release InfMLLM pins, loaded with `from_pretrained` from
vicuna-7b-v1.5's tokenizer settings (legacy=False, special tokens as AddedTokens) for text containing special
tokens. Later 4.x releases encode the text after a special token differently (no dummy prefix to take off), so the
version matters.

    python3 -m venv venv && venv/bin/pip install sentencepiece torch "numpy<2" transformers==4.31.0 protobuf
    venv/bin/python tools/reference/tokenizer_fixtures.py Tests/TokenizationTests/Fixtures
    venv/bin/python tools/reference/tokenizer_fixtures.py --reference-only Tests/TokenizationTests/Fixtures

Writes tokenizer.model, tokenizer.json (the same BPE in Hugging Face's format) and tokenizer_cases.json.
Deterministic: the same versions give the same files. --reference-only keeps the trained model and every text,
and records the slow tokenizer's ids for them again.
"""

import io
import json
import os
import random
import sys

import sentencepiece as spm

WORDS = (
    "the a an of to in is on with for at by from up about into over after cat dog bird window sill yellow "
    "red blue green man woman child person people car bus train street table chair plate pizza sandwich "
    "sitting standing looking holding riding eating walking running playing wearing white black small large "
    "two three several many photo image picture of it this that there here left right top bottom middle "
    "what where who how why which color colour number question answer short caption describe region box "
    "naïve café résumé Zürich São Paulo crème brûlée façade jalapeño smörgåsbord Ελλάδα Москва "
    "東京 北京 大阪 猫 犬 鳥 写真 画像 中文 日本語 한국어 서울 ภาษาไทย हिन्दी العربية עברית"
).split()

EMOJI = ["🐈", "🐕", "🐦", "🍕", "🚗", "👍🏽", "🏳️‍🌈", "❤️", "😀", "🎉", "👨‍👩‍👧"]


# LLaMA's SentencePiece trainer settings (BPE, byte fallback, split digits, identity normalizer, ...), shared with
# tokenizer32k_fixtures.py.
LLAMA_TRAINER = dict(
    model_type="bpe",
    byte_fallback=True,
    split_digits=True,
    normalization_rule_name="identity",
    add_dummy_prefix=True,
    remove_extra_whitespaces=False,
    allow_whitespace_only_pieces=True,
    split_by_unicode_script=True,
    character_coverage=0.99995,
    max_sentencepiece_length=16,
    unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
)


# vicuna-7b-v1.5's tokenizer_config.json and special_tokens_map.json, the settings InfMLLM loads its tokenizer with.
VICUNA_SPECIAL = {name: {"content": text, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}
                  for name, text in (("bos_token", "<s>"), ("eos_token", "</s>"), ("unk_token", "<unk>"))}
VICUNA_CONFIG = dict({name: dict(value, __type="AddedToken") for name, value in VICUNA_SPECIAL.items()},
                     add_bos_token=True, add_eos_token=False, clean_up_tokenization_spaces=False, legacy=False,
                     model_max_length=4096, pad_token=None, padding_side="right", sp_model_kwargs={},
                     tokenizer_class="LlamaTokenizer")


def vicuna_slow_tokenizer(model_path):
    """The slow LlamaTokenizer as `from_pretrained` builds it for vicuna-7b-v1.5, on the SentencePiece model at
    `model_path`."""
    import shutil
    import tempfile

    from transformers import LlamaTokenizer

    directory = tempfile.mkdtemp()
    shutil.copy(model_path, os.path.join(directory, "tokenizer.model"))
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump(VICUNA_CONFIG, f)
    with open(os.path.join(directory, "special_tokens_map.json"), "w") as f:
        json.dump(VICUNA_SPECIAL, f)
    tokenizer = LlamaTokenizer.from_pretrained(directory)
    shutil.rmtree(directory)
    assert tokenizer.add_bos_token and not tokenizer.add_eos_token and not tokenizer.legacy
    return tokenizer


def chat_segments(hf, prompt, marker):
    """LLaVA's tokenizer_image_token: each chunk with BOS, kept on the first chunk only."""
    parts = [hf(part).input_ids for part in prompt.split(marker)]
    return [parts[0]] + [p[1:] if p and p[0] == hf.bos_token_id else p for p in parts[1:]]


def reference_ids(hf, special, chunks):
    """The slow tokenizer's ids for the special-token texts and the prompts split at image markers."""
    for case in special:
        case["ids"] = hf(case["text"], add_special_tokens=False).input_ids
        case["ids_bos"] = hf(case["text"], add_special_tokens=True).input_ids
    for case in chunks:
        parts = case["prompt"].split(case["marker"])
        case["segments"] = (chat_segments(hf, case["prompt"], case["marker"]) if case["bos"] else
                            [hf(part, add_special_tokens=False).input_ids for part in parts])


def training_corpus(rng):
    lines = []
    for _ in range(20000):
        n = rng.randint(3, 18)
        words = [rng.choice(WORDS) for _ in range(n)]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words) + 1), str(rng.randint(0, 99999)))
        if rng.random() < 0.1:
            words.append(rng.choice(EMOJI))
        line = " ".join(words)
        if rng.random() < 0.5:
            line = line[0].upper() + line[1:] + rng.choice([".", "?", "!", ",", ":", ""])
        lines.append(line)
    lines += ["USER: <image>\nWhat is this? ASSISTANT: A cat.", "Question: what colour? Short answer: red"] * 50
    lines += ["<ref>the dog on the left</ref> [0.12,0.34,0.56,0.78]"] * 50
    return lines


def train(directory):
    rng = random.Random(1234)
    corpus = io.StringIO("\n".join(training_corpus(rng)))
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus.getvalue().split("\n")),
        model_writer=model,
        vocab_size=1400,
        **LLAMA_TRAINER,
        num_threads=1,
        minloglevel=2,
    )
    path = os.path.join(directory, "tokenizer.model")
    with open(path, "wb") as f:
        f.write(model.getvalue())
    return path


def cases(rng):
    strings = ["", " ", "  ", "   ", "\t", "\n", "\r\n", " \n ", "a", " a", "a ", "  a  b  "]
    strings += [chr(c) for c in range(256)]  # every byte value as a code point
    strings += ["x" + chr(c) + "y" for c in range(0, 256, 7)]
    strings += ["0", "42", "2026", "3.14159", "1,000,000", "x1y2z3", "[0.123,0.456,0.789,1.0]"]
    strings += ["supercalifragilisticexpialidocious" * 3, "a" * 200, "ab" * 150, "ひらがなカタカナ漢字" * 5]
    strings += EMOJI + ["".join(EMOJI), "Cat 🐈 and dog 🐕!"]
    strings += ["tab\tseparated\tvalues", "multi\nline\ntext\n", "trailing spaces   ", "\u2581already escaped"]
    strings += ["mixed: English, 中文, русский, العربية, हिन्दी 123 🎉"]
    for _ in range(1800):
        kind = rng.random()
        n = rng.randint(1, 14)
        if kind < 0.5:
            words = [rng.choice(WORDS) for _ in range(n)]
            sep = rng.choice([" ", " ", " ", "  ", "\t", "\n", ", "])
            s = sep.join(words)
        elif kind < 0.7:
            s = "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(rng.randint(1, 40)))
        elif kind < 0.85:
            ranges = [(0xC0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x4E00, 0x9FFF), (0x3040, 0x30FF),
                      (0xAC00, 0xD7A3), (0x1F300, 0x1FAFF), (0x0600, 0x06FF), (0x0900, 0x097F)]
            chars = []
            for _ in range(rng.randint(1, 20)):
                lo, hi = rng.choice(ranges)
                chars.append(chr(rng.randint(lo, hi)))
                if rng.random() < 0.2:
                    chars.append(" ")
            s = "".join(chars)
        else:
            s = " ".join(str(rng.randint(0, 10 ** rng.randint(1, 12))) for _ in range(n))
        if rng.random() < 0.1:
            s = " " * rng.randint(1, 4) + s
        strings.append(s)
    return strings


def special_cases(rng):
    system = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives "
              "helpful, detailed, and polite answers to the user's questions.")
    out = [
        "<s>", "</s>", "<unk>", "<s>hello", "hello</s>", " </s>USER", "a</s>USER: b", "</s> USER",
        "<s> </s>", "x<s>y</s>z<unk>w", "<</s>>", "<s<s>>", "\u2581</s>", "ASSISTANT: A cat.</s>USER: Why? ASSISTANT:",
        system + " USER: ", "\nWhat is the cat watching ? ASSISTANT:",
        system + " USER: <image>\nWhy this image is interesting ? ASSISTANT: Because.</s>USER: What is it ? ASSISTANT:",
        "<image>", "Question:what colour is the bus Short answer:", "<ref>the man in red</ref>",
    ]
    for _ in range(200):
        parts = []
        for _ in range(rng.randint(1, 6)):
            r = rng.random()
            if r < 0.3:
                parts.append(rng.choice(["<s>", "</s>", "<unk>"]))
            else:
                parts.append(rng.choice(["", " ", "  ", "\n"]) + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5))) + rng.choice(["", " ", "\n"]))
        out.append("".join(parts))
    return out


def main(directory):
    os.makedirs(directory, exist_ok=True)
    model_path = train(directory)
    sp = spm.SentencePieceProcessor(model_file=model_path)
    rng = random.Random(20261126)

    import transformers
    from transformers import LlamaTokenizer
    from transformers.convert_slow_tokenizer import convert_slow_tokenizer

    hf = vicuna_slow_tokenizer(model_path)

    converted = convert_slow_tokenizer(LlamaTokenizer(vocab_file=model_path, legacy=True))
    converted.save(os.path.join(directory, "tokenizer.json"))

    encode = []
    for s in cases(rng):
        ids = sp.encode(s)
        encode.append({"text": s, "ids": ids, "decoded": sp.decode(ids), "fast": converted.encode(s, add_special_tokens=False).ids})

    special = [{"text": s} for s in special_cases(rng)]

    # Prompts split at the image marker, each chunk tokenized on its own (spec section 4): the multitask model
    # without special tokens; the chat model (LLaVA's tokenizer_image_token) with BOS, kept on the first chunk only.
    system = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives "
              "helpful, detailed, and polite answers to the user's questions.")
    chunks = []
    for prompt in ["<image><ImageHere>Question:what colour is the bus Short answer:",
                   "<image><ImageHere><ref>the man in red on the left</ref>", "<ImageHere>A photo of", "no marker",
                   "<ImageHere>", "a<ImageHere>b<ImageHere>c"]:
        chunks.append({"prompt": prompt, "marker": "<ImageHere>", "bos": False})
    for prompt in [system + " USER: <image>\nWhat is the cat watching ? ASSISTANT:",
                   system + " USER: <image>\nWhy? ASSISTANT: A cat.</s>USER: What season is it ? ASSISTANT:",
                   "<image>\nDescribe.", "USER: no image ASSISTANT:"]:
        chunks.append({"prompt": prompt, "marker": "<image>", "bos": True})
    reference_ids(hf, special, chunks)

    decode = []
    vocab = sp.get_piece_size()
    byte_ids = [sp.piece_to_id("<0x%02X>" % b) for b in range(256)]
    for i in range(400):
        n = rng.randint(0, 30)
        ids = []
        for _ in range(n):
            r = rng.random()
            if r < 0.35:
                ids.append(rng.choice(byte_ids))
            elif r < 0.4:
                ids.append(rng.choice([0, 1, 2]))
            else:
                ids.append(rng.randrange(vocab))
        decode.append({"ids": ids, "text": sp.decode(ids), "hf_skip_special": hf.decode(ids, skip_special_tokens=True)})

    with open(os.path.join(directory, "tokenizer_cases.json"), "w", encoding="utf-8") as f:
        json.dump({"sentencepiece": spm.__version__, "transformers": transformers.__version__, "encode": encode,
                   "special": special, "decode": decode, "chunks": chunks},
                  f, ensure_ascii=False, indent=0)
    print(f"{len(encode)} encode cases, {len(special)} special-token cases, {len(decode)} decode cases, vocab {vocab}")


def reference_only(directory):
    import transformers

    path = os.path.join(directory, "tokenizer_cases.json")
    with open(path, encoding="utf-8") as f:
        cases = json.load(f)
    reference_ids(vicuna_slow_tokenizer(os.path.join(directory, "tokenizer.model")), cases["special"], cases["chunks"])
    cases["transformers"] = transformers.__version__
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=0)
    print(f"{len(cases['special'])} special-token cases and {len(cases['chunks'])} prompts recorded again")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--reference-only"]:
        reference_only(sys.argv[2] if len(sys.argv) > 2 else "Tests/TokenizationTests/Fixtures")
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "Tests/TokenizationTests/Fixtures")
