"""Decode + resize throughput, side by side in one run: Pillow (`Image.open(f).convert("RGB").resize((S, S),
BICUBIC)`, in 1 and 2 processes) and `infmllm bench images` (1 and 2 threads) over the same generated photos.

    swift build -c release --product infmllm
    venv/bin/python tools/bench/images_bench.py .build/release/infmllm [BASELINE_BINARY]

With a second binary (another build of infmllm), its rows are measured beside the first's, alternately. CORPUS=portrait
makes the photos portrait (480x640 to 720x1280), where the resize's pass order matters. FORMAT=webp saves every photo
as a lossy WebP (quality 80) instead of JPEG q90 and PNG; FORMAT=gif as a GIF (Pillow's adaptive 256-colour palette,
interlaced, as Pillow writes them); FORMAT=heic as a HEIC (quality 80, written and read on Pillow's side by
pillow-heif, which the environment then needs); FORMAT=avif as an AVIF (quality 80, Pillow's own AVIF plugin).

Prints a Markdown table for BENCHMARKS.md.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool

import numpy as np
import PIL
from PIL import Image

SIZE = 448


def make_corpus(directory, count=40):
    rng = np.random.default_rng(3)
    sizes = [(640, 480), (1024, 768), (800, 600), (480, 640), (1280, 720)]
    if os.environ.get("CORPUS") == "portrait":
        sizes = [(480, 640), (768, 1024), (600, 800), (720, 1280), (360, 640)]
    for i in range(count):
        w, h = sizes[i % len(sizes)]
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        rgb = np.stack([255 * x / w, 255 * y / h, 127 + 100 * np.sin(x / 13) * np.cos(y / 17)], axis=-1)
        rgb += rng.normal(0, 6, rgb.shape)
        im = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
        if os.environ.get("FORMAT") == "webp":
            im.save(os.path.join(directory, f"{i:03}.webp"), quality=80)
        elif os.environ.get("FORMAT") == "gif":
            im.convert("P", palette=Image.ADAPTIVE).save(os.path.join(directory, f"{i:03}.gif"))
        elif os.environ.get("FORMAT") in ("heic", "avif"):
            im.save(os.path.join(directory, f"{i:03}.{os.environ['FORMAT']}"), quality=80)
        elif i % 4 == 3:
            im.save(os.path.join(directory, f"{i:03}.png"))
        else:
            im.save(os.path.join(directory, f"{i:03}.jpg"), quality=90)


if os.environ.get("FORMAT") == "heic":
    import pillow_heif

    pillow_heif.register_heif_opener()


def pillow_one(path):
    with Image.open(path) as im:
        im.convert("RGB").resize((SIZE, SIZE), Image.BICUBIC)


def pillow_rate(files, processes):
    start = time.perf_counter()
    if processes == 1:
        for f in files:
            pillow_one(f)
    else:
        with Pool(processes) as pool:
            pool.map(pillow_one, files, chunksize=4)
    return len(files) / (time.perf_counter() - start)


def ours(binary, directory, passes, threads):
    out = subprocess.run([binary, "bench", "images", "--directory", directory, "--size", str(SIZE),
                          "--passes", str(passes), "--threads", str(threads)], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout)["imagesPerSecond"]


def main(binary, baseline=None, passes=3):
    with tempfile.TemporaryDirectory() as directory:
        make_corpus(directory)
        files = sorted(os.path.join(directory, f) for f in os.listdir(directory))
        rows = []
        for threads in (1, 2):
            rows.append((f"Pillow {PIL.__version__} ({threads} process{'es' if threads > 1 else ''})", threads,
                         pillow_rate(files * passes, threads)))
            rows.append(("infmllm Imaging (Swift)", threads, ours(binary, directory, passes, threads)))
            if baseline:
                rows.append((f"infmllm Imaging, {baseline}", threads, ours(baseline, directory, passes, threads)))
    corpus = "portrait, 480x640 to 720x1280" if os.environ.get("CORPUS") == "portrait" else "640x480 to 1280x720"
    kinds = {"webp": "WebP q80", "gif": "GIF, adaptive palette", "heic": "HEIC q80 (pillow-heif)", "avif": "AVIF q80"}
    kinds = kinds.get(os.environ.get("FORMAT"), "JPEG q90 and PNG")
    print(f"{len(files)} images ({kinds}, {corpus}), decode + resize to {SIZE}x{SIZE}, {passes} passes\n")
    print("| implementation | threads | images/s |")
    print("|---|---|---|")
    for name, threads, rate in rows:
        print(f"| {name} | {threads} | {rate:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".build/release/infmllm", sys.argv[2] if len(sys.argv) > 2 else None)
