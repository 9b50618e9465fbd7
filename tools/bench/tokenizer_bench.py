"""Tokenizer throughput, side by side in one run: Python `sentencepiece` and `infmllm bench tokenizer` encode
the same corpus (the golden-test strings) with the same tokenizer.model, single- and two-threaded.

    swift build -c release --product infmllm
    venv/bin/python tools/bench/tokenizer_bench.py .build/release/infmllm

Prints a Markdown table for BENCHMARKS.md.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import sentencepiece as spm

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "TokenizationTests", "Fixtures")


def python_rate(sp, strings, passes, threads):
    sp.encode(strings)  # warm-up
    start = time.perf_counter()
    tokens = 0
    for _ in range(passes):
        if threads == 1:
            for s in strings:
                tokens += len(sp.encode(s))
        else:
            tokens += sum(len(ids) for ids in sp.encode(strings, num_threads=threads))
    return time.perf_counter() - start, tokens


def main(binary, passes=20):
    model = os.path.join(FIXTURES, "tokenizer.model")
    with open(os.path.join(FIXTURES, "tokenizer_cases.json"), encoding="utf-8") as f:
        strings = [case["text"] for case in json.load(f)["encode"]]
    megabytes = sum(len(s.encode("utf-8")) for s in strings) / 1e6
    corpus = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8")
    json.dump(strings, corpus, ensure_ascii=False)
    corpus.close()
    sp = spm.SentencePieceProcessor(model_file=model)
    rows = []
    for threads in (1, 2):
        seconds, tokens = python_rate(sp, strings, passes, threads)
        label = "encode per string" if threads == 1 else "encode(list, num_threads=2)"
        rows.append((f"Python sentencepiece {spm.__version__} ({label})", threads, len(strings) * passes / seconds,
                     megabytes * passes / seconds, tokens))
        out = subprocess.run([binary, "bench", "tokenizer", "--tokenizer", model, "--corpus", corpus.name,
                              "--passes", str(passes), "--threads", str(threads)], check=True, capture_output=True, text=True)
        r = json.loads(out.stdout)
        rows.append(("infmllm Tokenization (Swift)", threads, r["stringsPerSecond"], r["megabytesPerSecond"], r["tokens"]))
    os.unlink(corpus.name)
    print(f"{len(strings)} strings, {megabytes * 1e3:.0f} kB, {passes} passes\n")
    print("| implementation | threads | strings/s | MB/s | tokens |")
    print("|---|---|---|---|---|")
    for name, threads, rate, mbps, tokens in rows:
        print(f"| {name} | {threads} | {rate:,.0f} | {mbps:.2f} | {tokens:,} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".build/release/infmllm")
