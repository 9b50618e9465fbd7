"""Trains a LLaMA-sized (32,000-piece) SentencePiece BPE tokenizer on real text found on this machine and records
what the reference implementations do with it, for the Swift tokenizer's golden tests at LLaMA's real size.

Same trainer settings as tokenizer_fixtures.py (LLaMA's: BPE, byte fallback, split digits, identity normalizer,
<unk>=0 <s>=1 </s>=2, no pad), but vocab_size=32000 and a corpus of a few tens of MB gathered from local files:
/usr/share/common-licenses, text files under /usr/share/doc, Python sources under /usr/lib/python3*, and man pages
(English and translated) under /usr/share/man. No downloads. Every file list is sorted and then put in a fixed
pseudo-random order; every file and every source has a fixed byte cap; a fixed share of lines (blocks of four) is
held out of training and the corpus cases are sampled from those held-out lines only.

Reference implementations: Python `sentencepiece` (encode, decode) for the corpus strings, and the slow
`LlamaTokenizer` of transformers 4.31.0 as `from_pretrained` builds it for vicuna-7b-v1.5 (tokenizer_fixtures.py's
`vicuna_slow_tokenizer`) for InfMLLM-7B-Chat's vicuna_v1 chat prompts, `tokenizer(text).input_ids` (BOS added,
`</s>` in the text recognised as EOS).

    python3 -m venv /work/venv-tok && /work/venv-tok/bin/pip install sentencepiece torch "numpy<2" \
        transformers==4.31.0 protobuf
    nice -n 19 /work/venv-tok/bin/python tools/reference/tokenizer32k_fixtures.py Tests/TokenizationTests/Fixtures/llama32k
    /work/venv-tok/bin/python tools/reference/tokenizer32k_fixtures.py --reference-only Tests/TokenizationTests/Fixtures/llama32k

--reference-only keeps the trained model and the corpus cases and records the chat prompts' ids again.

Writes tokenizer.model and cases.json into the directory. Training runs on one thread, loads every training
sentence (no sampling, no shuffling), and is deterministic: the same versions and the same installed files give
the same bytes. The corpus depends on what this machine has installed; cases.json records each source's file and
byte counts and the SHA-256 of the training text, so a rerun elsewhere shows whether its corpus differs.
"""

import gzip
import hashlib
import io
import json
import os
import platform
import random
import sys

import sentencepiece as spm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tokenizer_fixtures import LLAMA_TRAINER, chat_segments, vicuna_slow_tokenizer  # noqa: E402  (defined once)

SEED = 32000

MAN_SECTIONS = ["man1", "man2", "man3", "man4", "man5", "man6", "man7", "man8"]


def _doc_file(path):
    name = os.path.basename(path).lower()
    base = name[:-3] if name.endswith(".gz") else name
    return (base.startswith(("readme", "news", "changelog", "changes", "authors", "todo", "faq"))
            or base == "copyright" or base.endswith((".txt", ".md", ".rst")))


def _python_file(path):
    return path.endswith(".py")


def _man_file(path):
    return path.endswith(".gz")


def _any_file(path):
    return True


def _walk(root, accept):
    out = []
    if not os.path.isdir(root):
        return out
    for directory, subdirectories, files in os.walk(root):
        subdirectories.sort()
        for name in sorted(files):
            path = os.path.join(directory, name)
            if os.path.islink(path) or not os.path.isfile(path) or not accept(path):
                continue
            out.append(path)
    return sorted(out)


def sources():
    """(name, roots, file filter, per-file cap in bytes, source cap in bytes, corpus cases sampled from it)."""
    python_roots = sorted(
        os.path.join("/usr/lib", d) for d in os.listdir("/usr/lib") if d.startswith("python3"))
    man_english = [os.path.join("/usr/share/man", d) for d in MAN_SECTIONS]
    man_translated = sorted(
        os.path.join("/usr/share/man", d) for d in os.listdir("/usr/share/man")
        if d not in MAN_SECTIONS and os.path.isdir(os.path.join("/usr/share/man", d)))
    return [
        ("licenses", ["/usr/share/common-licenses"], _any_file, 256 << 10, 1 << 20, 100),
        ("doc", ["/usr/share/doc"], _doc_file, 64 << 10, 10 << 20, 350),
        ("python", python_roots, _python_file, 64 << 10, 12 << 20, 400),
        ("man", man_english, _man_file, 32 << 10, 12 << 20, 350),
        ("man-translated", man_translated, _man_file, 32 << 10, 6 << 20, 300),
    ]


def read_text(path, cap):
    """The file's first `cap` bytes (decompressed), cut at the last newline; None when not UTF-8 text."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                data = f.read(cap + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(cap + 1)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    if len(data) > cap:
        data = data[:cap]
        cut = data.rfind(b"\n")
        data = data[:cut + 1] if cut >= 0 else b""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def held_out(index):
    """Whether line `index` of a file is held out of training: one block of four lines in every 25."""
    return (index // 4) % 25 == 7


def gather():
    """Training lines, held-out blocks per source, and statistics."""
    training = []
    held = {}
    stats = {}
    for number, (name, roots, accept, file_cap, source_cap, _) in enumerate(sources()):
        paths = sorted(p for root in roots for p in _walk(root, accept))
        random.Random(SEED + number).shuffle(paths)
        used = 0
        files = 0
        blocks = []
        lines_in = 0
        for path in paths:
            if used >= source_cap:
                break
            text = read_text(path, min(file_cap, source_cap - used))
            if not text:
                continue
            files += 1
            used += len(text.encode("utf-8"))
            block = []
            for index, line in enumerate(text.split("\n")):
                line = line.rstrip("\r")
                if held_out(index):
                    if line.strip():
                        block.append(line)
                    continue
                if block:
                    blocks.append(block)
                    block = []
                if line.strip():
                    training.append(line)
                    lines_in += 1
            if block:
                blocks.append(block)
        held[name] = blocks
        stats[name] = {"roots": roots, "files_available": len(paths), "files_used": files, "bytes": used,
                       "training_lines": lines_in, "held_out_blocks": len(blocks)}
    return training, held, stats


def train(directory, lines):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=32000,
        **LLAMA_TRAINER,
        # Determinism: every sentence is loaded (no sampling, so no shuffling), one thread.
        input_sentence_size=0,
        shuffle_input_sentence=False,
        num_threads=1,
        minloglevel=2,
    )
    path = os.path.join(directory, "tokenizer.model")
    with open(path, "wb") as f:
        f.write(model.getvalue())
    return path


HAND_WRITTEN = [
    "", " ", "  ", "    ", "\t", "\n", "\n\n", "\r\n", " \n ", "\t\t  \t",
    " leading space", "  two leading spaces", "    four leading spaces", "\tleading tab", "trailing spaces   ",
    "word  word   word    word", "a\n\n\nb", "    def encode(self, text):\n        return self.sp.encode(text)",
    "0", "7", "42", "2026", "3.14159", "1,000,000", "x1y2z3", "-273.15°C", "v1.2.3-rc4", "0x7FFF_FFFF",
    "[0.123,0.456,0.789,1.0]", "Call 555-0199 before 10:30 on 2024-02-29.", "1234567890" * 3,
    "🐈", "👍🏽", "🏳️‍🌈", "👨‍👩‍👧", "❤️", "Cat 🐈 and dog 🐕 on a sofa 🛋️!", "😀😃😄😁😆😅😂🤣",
    "東京は日本の首都です。", "北京欢迎你", "我爱自然语言处理。", "ひらがなとカタカナと漢字", "한국어 문장입니다.",
    "中文English混合123", "Москва — столица России.", "Ελληνικά κείμενα", "العربية من اليمين إلى اليسار",
    "עברית", "हिन्दी भाषा", "ภาษาไทย", "naïve café résumé Zürich façade", "e\u0301 vs \u00e9",
    "\u2581already escaped", "a\u00a0non-breaking\u2003em space", "zero\u200bwidth", "tab\tseparated\tvalues",
    "<s> and </s> and <unk> as plain text", "USER: <image>\nWhat is in the image? ASSISTANT:",
    "supercalifragilisticexpialidocious" * 2, "a" * 100, "mixed: English, 中文, русский, العربية, हिन्दी 123 🎉",
]


def corpus_strings(held):
    rng = random.Random(SEED)
    out = list(HAND_WRITTEN)
    seen = set(out)
    for name, roots, accept, file_cap, source_cap, count in sources():
        blocks = held[name]
        singles = [line for block in blocks for line in block if len(line) <= 400]
        multi = ["\n".join(block) for block in blocks if len(block) >= 2 and len("\n".join(block)) <= 600]
        taken = 0
        attempts = 0
        while taken < count and attempts < count * 20 and (singles or multi):
            attempts += 1
            pool = multi if (multi and rng.random() < 0.2) or not singles else singles
            s = rng.choice(pool)
            if s in seen:
                continue
            seen.add(s)
            out.append(s)
            taken += 1
    return out


SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the user's questions.")

# InfMLLM-7B-Chat's vicuna_v1 template: system, " ", "USER: ...", " ", "ASSISTANT: ...", "</s>", and so on.
CHAT = [
    SYSTEM + " USER: <image>\nWhat is in the image? ASSISTANT: A dog on a sofa.</s>USER: Where is it? ASSISTANT:",
    SYSTEM + " USER: <image>\nHow many people are there? ASSISTANT: There are 3 people.</s>USER: What are they "
    "wearing? ASSISTANT: Two wear red jackets and one wears a blue coat.</s>USER: Is it cold? ASSISTANT:",
    SYSTEM + " USER: <image>\nWhat does the sign say? ASSISTANT: It says \"東京駅\" (Tokyo Station).</s>USER: "
    "Translate it to Korean. ASSISTANT: 도쿄역</s>USER: And in Chinese? ASSISTANT:",
    SYSTEM + " USER: <image>\nWhy is this image funny? 😂 ASSISTANT: The cat 🐈 is wearing sunglasses 🕶️.</s>USER: "
    "What year could it be from? ASSISTANT: Probably 2019–2021, from the phone in the corner.</s>USER: Thanks! "
    "ASSISTANT:",
    SYSTEM + " USER: <image>\nList the objects:\n1.\n2.\n3. ASSISTANT: 1. A laptop\n2. A mug\n3. A lamp</s>USER:   "
    "What is   on the   screen?  ASSISTANT:  A spreadsheet with 12 columns.</s>USER: \tAnd the mug? ASSISTANT:",
    SYSTEM + " USER: <image>\nWhere is the box [0.12,0.34,0.56,0.78]? ASSISTANT: <ref>the red box</ref> is on the "
    "left.</s>USER: Is <s> or <unk> written on it? ASSISTANT: No.</s>USER: ok </s> ASSISTANT:",
]


def write_json(path, header, sections):
    """One case a line, so the file stays small and diffs stay readable."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n")
        for key, value in header.items():
            f.write(json.dumps(key) + ": " + json.dumps(value, ensure_ascii=False, sort_keys=True) + ",\n")
        for number, (key, items) in enumerate(sections.items()):
            f.write(json.dumps(key) + ": [\n")
            f.write(",\n".join(json.dumps(item, ensure_ascii=False) for item in items))
            f.write("\n]" + ("," if number < len(sections) - 1 else "") + "\n")
        f.write("}\n")


def main(directory):
    import google.protobuf
    import transformers

    os.makedirs(directory, exist_ok=True)
    training, held, stats = gather()
    digest = hashlib.sha256("\n".join(training).encode("utf-8")).hexdigest()
    total = sum(len(line.encode("utf-8")) + 1 for line in training)
    print(f"training corpus: {len(training)} lines, {total} bytes, sha256 {digest}", flush=True)
    for name, s in stats.items():
        print(f"  {name}: {s}", flush=True)

    model_path = train(directory, training)
    sp = spm.SentencePieceProcessor(model_file=model_path)
    assert sp.get_piece_size() == 32000

    corpus = []
    for s in corpus_strings(held):
        ids = sp.encode(s)
        corpus.append({"text": s, "ids": ids, "decoded": sp.decode(ids)})

    chat = chat_cases(vicuna_slow_tokenizer(model_path))

    header = {
        "versions": {"sentencepiece": spm.__version__, "transformers": transformers.__version__,
                     "protobuf": google.protobuf.__version__, "python": platform.python_version()},
        "vocab_size": sp.get_piece_size(),
        "training_corpus": {"lines": len(training), "bytes": total, "sha256": digest, "sources": stats},
    }
    write_json(os.path.join(directory, "cases.json"), header, {"corpus": corpus, "chat": chat})
    model_size = os.path.getsize(model_path)
    cases_size = os.path.getsize(os.path.join(directory, "cases.json"))
    print(f"{len(corpus)} corpus cases, {len(chat)} chat prompts; tokenizer.model {model_size} bytes, "
          f"cases.json {cases_size} bytes; model sha256 "
          f"{hashlib.sha256(open(model_path, 'rb').read()).hexdigest()}")


def chat_cases(hf):
    return [{"text": prompt, "ids": hf(prompt).input_ids, "segments": chat_segments(hf, prompt, "<image>")}
            for prompt in CHAT]


def reference_only(directory):
    import transformers

    path = os.path.join(directory, "cases.json")
    with open(path, encoding="utf-8") as f:
        cases = json.load(f)
    chat = chat_cases(vicuna_slow_tokenizer(os.path.join(directory, "tokenizer.model")))
    assert [case["text"] for case in chat] == [case["text"] for case in cases["chat"]], "CHAT changed: retrain"
    header = {key: cases[key] for key in cases if key not in ("corpus", "chat")}
    header["versions"]["transformers"] = transformers.__version__
    write_json(path, header, {"corpus": cases["corpus"], "chat": chat})
    print(f"{len(chat)} chat prompts recorded again")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--reference-only"]:
        reference_only(sys.argv[2] if len(sys.argv) > 2 else "Tests/TokenizationTests/Fixtures/llama32k")
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "Tests/TokenizationTests/Fixtures/llama32k")
