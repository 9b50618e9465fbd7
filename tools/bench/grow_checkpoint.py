"""Makes a checkpoint with more vision blocks and decoder layers from a smaller one of the same widths, by repeating
its blocks and layers in turn: the full `7b` preset's shapes from a `slice` checkpoint in seconds, where generating
15.5 GB of random weights takes minutes. For benchmarks only (repeated layers compute like distinct ones).

    python3 tools/bench/grow_checkpoint.py SOURCE_DIR OUT_DIR --vision-blocks 39 --text-layers 32
"""

import argparse
import json
import os
import re
import shutil
import struct


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source")
    parser.add_argument("out")
    parser.add_argument("--vision-blocks", type=int, default=39)
    parser.add_argument("--text-layers", type=int, default=32)
    args = parser.parse_args()
    config = json.load(open(os.path.join(args.source, "config.json")))
    have_blocks = config["vision"]["num_hidden_layers"]
    have_layers = config["text"]["num_hidden_layers"]
    path = os.path.join(args.source, "model.safetensors")
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
    base = 8 + size
    metadata = header.pop("__metadata__", None)
    pattern = re.compile(r"^(visual_encoder\.blocks\.|lm_model\.model\.layers\.)(\d+)\.(.*)$")
    plan = []  # (new name, source entry)
    for name, entry in header.items():
        match = pattern.match(name)
        if not match:
            plan.append((name, entry))
            continue
        prefix, index, rest = match.group(1), int(match.group(2)), match.group(3)
        have, want = (have_blocks, args.vision_blocks) if prefix.startswith("visual") else (have_layers, args.text_layers)
        plan.extend((f"{prefix}{i}.{rest}", entry) for i in range(index, want, have))
    plan.sort(key=lambda item: item[0])
    out_header, offset = {}, 0
    for name, entry in plan:
        length = entry["data_offsets"][1] - entry["data_offsets"][0]
        out_header[name] = {"dtype": entry["dtype"], "shape": entry["shape"], "data_offsets": [offset, offset + length]}
        offset += length
    if metadata is not None:
        out_header["__metadata__"] = metadata
    encoded = json.dumps(out_header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    os.makedirs(args.out, exist_ok=True)
    with open(path, "rb") as source, open(os.path.join(args.out, "model.safetensors"), "wb") as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        for name, entry in plan:
            start, end = entry["data_offsets"]
            source.seek(base + start)
            out.write(source.read(end - start))
    config["vision"]["num_hidden_layers"] = args.vision_blocks
    config["text"]["num_hidden_layers"] = args.text_layers
    json.dump(config, open(os.path.join(args.out, "config.json"), "w"), indent=2)
    for extra in os.listdir(args.source):
        if extra not in ("config.json", "model.safetensors") and os.path.isfile(os.path.join(args.source, extra)):
            shutil.copy(os.path.join(args.source, extra), args.out)
    print(f"{args.out}: {args.vision_blocks} vision blocks, {args.text_layers} layers, {offset / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
