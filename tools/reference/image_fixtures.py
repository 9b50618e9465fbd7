"""Makes the image fixtures for the Swift Imaging tests and records what Pillow does with them.

For each generated JPEG, PNG, WebP or GIF (many sizes, aspect ratios and kinds): the pixels of
`Image.open(f).convert("RGB")`, the S x S bicubic resize (stretched, as the multitask model does) and the
expand2square + resize (as the chat model does), and for a few images the normalised CHW floats.

    python3 -m venv venv && venv/bin/pip install "pillow==10.0.1" numpy pypng
    venv/bin/python tools/reference/image_fixtures.py Tests/ImagingTests/Fixtures
    venv/bin/python tools/reference/image_fixtures.py --reference-only Tests/ImagingTests/Fixtures
    venv/bin/python tools/reference/image_fixtures.py --add-webp Tests/ImagingTests/Fixtures
    venv/bin/python tools/reference/image_fixtures.py --add-exif Tests/ImagingTests/Fixtures
    venv/bin/python tools/reference/image_fixtures.py --add-gif Tests/ImagingTests/Fixtures

Deterministic for a given Pillow version (recorded in the output). The pinned environment of the released model
(torch 2.1) ran a Pillow of 2023; every Pillow through 12.x resizes the same way. Pillow 13 runs the vertical pass
first when the height shrinks much more than the width, which changes portrait photos' pixels, so the fixtures come
from Pillow 10.0.1. --reference-only keeps the committed image files and records what Pillow does with them again;
--add-webp keeps them too and adds the WebP files (made after the others, with a generator of their own, so that
the committed JPEG and PNG files stay as they are); --add-exif likewise adds images with an Exif orientation tag, whose
records also hold the tag as Pillow reads it and the pixels of `ImageOps.exif_transpose` (what viewers show); --add-gif
adds GIF files, some written byte by byte for the first-frame cases Pillow's writer never makes.
"""

import base64
import hashlib
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
import PIL
import png  # pypng: writes the interlaced and low-bit-depth PNGs Pillow cannot
from PIL import Image, ImageOps

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
FILL = tuple(int(x * 255) for x in MEAN)
SIZE = 32


def picture(rng, width, height):
    """A smooth gradient with noise, edges and a few flat blocks: compresses well, exercises every filter."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 255 * (x / max(width - 1, 1))
    g = 255 * (y / max(height - 1, 1))
    b = 127 + 100 * np.sin(x / 7.0) * np.cos(y / 5.0)
    rgb = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (height, width, 3))
    for _ in range(3):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        rgb[y0:y0 + height // 4 + 1, x0:x0 + width // 4 + 1] = rng.integers(0, 256, 3)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def expand2square(img):
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    canvas = Image.new(img.mode, (side, side), FILL)
    canvas.paste(img, ((side - w) // 2, (side - h) // 2))
    return canvas


def write_png_pypng(path, rows, width, height, **kwargs):
    with open(path, "wb") as f:
        png.Writer(width, height, **kwargs).write(f, rows)


def make(directory):
    rng = np.random.default_rng(7)
    images = []  # (file name, kind, writer)
    sizes = [(1, 1), (2, 3), (1, 40), (40, 1), (17, 23), (64, 64), (100, 37), (37, 100), (640, 427), (300, 2),
             (2, 300), (448, 448), (1200, 900), (31, 32), (33, 32), (45, 50), (50, 45), (20, 64), (64, 20),
             (48, 40), (40, 48), (34, 33), (33, 34)]

    def add(name, kind, save):
        path = os.path.join(directory, name)
        save(path)
        images.append((name, kind))

    for w, h in sizes:
        arr = picture(rng, w, h)
        im = Image.fromarray(arr, "RGB")
        add(f"rgb_{w}x{h}.jpg", "jpeg baseline 4:2:0", lambda p: im.save(p, quality=90))
        if w * h <= 100_000:  # noisy pictures compress poorly as PNG; large PNGs add size, not coverage
            add(f"rgb_{w}x{h}.png", "png rgb8", lambda p: im.save(p))
    for w, h in [(64, 48), (133, 51), (5, 7)]:
        arr = picture(rng, w, h)
        im = Image.fromarray(arr, "RGB")
        add(f"rgb444_{w}x{h}.jpg", "jpeg baseline 4:4:4", lambda p: im.save(p, quality=95, subsampling=0))
        add(f"progressive_{w}x{h}.jpg", "jpeg progressive", lambda p: im.save(p, quality=85, progressive=True))
        add(f"gray_{w}x{h}.jpg", "jpeg grayscale", lambda p: im.convert("L").save(p, quality=90))
        add(f"cmyk_{w}x{h}.jpg", "jpeg cmyk (adobe)", lambda p: im.convert("CMYK").save(p, quality=90))
        add(f"rgba_{w}x{h}.png", "png rgba8", lambda p: Image.fromarray(np.dstack([arr, picture(rng, w, h)[..., 0]]), "RGBA").save(p))
        add(f"la_{w}x{h}.png", "png gray+alpha8", lambda p: im.convert("LA").save(p))
        add(f"gray_{w}x{h}.png", "png gray8", lambda p: im.convert("L").save(p))
        add(f"palette_{w}x{h}.png", "png palette8", lambda p: im.convert("P", palette=Image.ADAPTIVE, colors=200).save(p))
        add(f"palette_trns_{w}x{h}.png", "png palette + tRNS", lambda p: im.convert("P", palette=Image.ADAPTIVE, colors=16).save(p, transparency=3))
        gray = np.asarray(im.convert("L"))
        for depth in (1, 2, 4):
            add(f"gray{depth}_{w}x{h}.png", f"png gray{depth}", lambda p, d=depth: write_png_pypng(
                p, (gray >> (8 - d)).tolist(), w, h, greyscale=True, bitdepth=d))
        add(f"gray16_{w}x{h}.png", "png gray16", lambda p: write_png_pypng(
            p, (gray.astype(np.uint16) * 257 // (1 + rng.integers(0, 300))).tolist(), w, h, greyscale=True, bitdepth=16))
        add(f"gray16_small_{w}x{h}.png", "png gray16 (values < 256)", lambda p: write_png_pypng(
            p, (gray.astype(np.uint16)).tolist(), w, h, greyscale=True, bitdepth=16))
        rgb16 = arr.astype(np.uint16) * 257 + rng.integers(0, 257, arr.shape).astype(np.uint16)
        add(f"rgb16_{w}x{h}.png", "png rgb16", lambda p: write_png_pypng(p, rgb16.reshape(h, w * 3).tolist(), w, h, bitdepth=16, greyscale=False))
        rgba16 = np.dstack([rgb16, rgb16[..., :1]])
        add(f"rgba16_{w}x{h}.png", "png rgba16", lambda p: write_png_pypng(p, rgba16.reshape(h, w * 4).tolist(), w, h, bitdepth=16, greyscale=False, alpha=True))
        la16 = np.dstack([rgb16[..., 0], rgb16[..., 1]])
        add(f"la16_{w}x{h}.png", "png gray+alpha16", lambda p: write_png_pypng(p, la16.reshape(h, w * 2).tolist(), w, h, bitdepth=16, greyscale=True, alpha=True))
        add(f"interlaced_{w}x{h}.png", "png rgb8 interlaced", lambda p: write_png_pypng(p, arr.reshape(h, w * 3).tolist(), w, h, greyscale=False, interlace=True))
        pal = [tuple(int(c) for c in rng.integers(0, 256, 3)) for _ in range(4)]
        idx = (gray >> 6).tolist()
        add(f"palette2_{w}x{h}.png", "png palette2", lambda p: write_png_pypng(p, idx, w, h, palette=pal, bitdepth=2))
        add(f"trns_rgb_{w}x{h}.png", "png rgb8 + tRNS", lambda p: Image.fromarray(arr, "RGB").save(p, transparency=(10, 20, 30)))
    return images + make_webp(directory) + make_exif(directory)


def make_exif(directory):
    """A small picture with each Exif orientation (JPEG), big enough to tell the eight apart, and a WebP with one."""
    rng = np.random.default_rng(13)
    images = []
    arr = picture(rng, 7, 4)
    im = Image.fromarray(arr, "RGB")
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        name = f"exif_{orientation}_7x4.jpg"
        im.save(os.path.join(directory, name), quality=95, exif=exif.tobytes())
        images.append((name, f"jpeg exif orientation {orientation}"))
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(os.path.join(directory, "exif_6_7x4.webp"), quality=90, exif=exif.tobytes())
    images.append(("exif_6_7x4.webp", "webp exif orientation 6"))
    images += make_png_orientation(directory, im)
    return images


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_with(im, before_idat=b"", after_idat=b""):
    """`im` as a PNG (Pillow's writer) with chunks added before the first IDAT and after the last."""
    buffer = io.BytesIO()
    im.save(buffer, "PNG")
    data = buffer.getvalue()
    first = data.index(b"IDAT") - 4
    end = data.index(b"IEND") - 4
    return data[:first] + before_idat + data[first:end] + after_idat + data[end:]


def make_png_orientation(directory, im):
    """PNGs with an orientation where Pillow's getexif() finds one: an eXIf chunk before the image data or after it,
    ImageMagick's "Raw profile type exif" text (zTXt), an XMP packet (iTXt), and XMP beside an eXIf without the tag."""
    def exif_block(orientation):
        exif = Image.Exif()
        if orientation:
            exif[0x0112] = orientation
        exif[0x010F] = "infmllm"  # Make: a block with another tag too
        return exif.tobytes()[6:]  # the TIFF structure, without "Exif\0\0", as eXIf holds it

    def raw_profile(orientation):
        hex_text = ("Exif\0\0".encode() + exif_block(orientation)).hex()
        lines = "\n".join(hex_text[i:i + 72] for i in range(0, len(hex_text), 72))
        text = f"\nexif\n{len(hex_text) // 2:8d}\n{lines}\n".encode("latin-1")
        return b"Raw profile type exif\0\0" + zlib.compress(text)

    def xmp(orientation, form):
        value = f'tiff:Orientation="{orientation}"' if form == "attribute" else \
            f"<tiff:Orientation>{orientation}</tiff:Orientation>"
        packet = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                  f'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" {value if form == "attribute" else ""}>'
                  f'{value if form != "attribute" else ""}</rdf:Description></rdf:RDF></x:xmpmeta>')
        return b"XML:com.adobe.xmp\0\1\0\0\0" + zlib.compress(packet.encode())

    made = [
        ("exif_6_7x4.png", "png eXIf before the image data", png_chunk(b"eXIf", exif_block(6)), b""),
        ("exif_3_7x4_late.png", "png eXIf after the image data", b"", png_chunk(b"eXIf", exif_block(3))),
        ("raw_profile_8_7x4.png", "png ImageMagick raw exif profile", png_chunk(b"zTXt", raw_profile(8)), b""),
        ("xmp_5_7x4.png", "png XMP orientation", png_chunk(b"iTXt", xmp(5, "attribute")), b""),
        ("exif_xmp_7_7x4.png", "png XMP orientation beside an eXIf without one",
         png_chunk(b"eXIf", exif_block(None)) + png_chunk(b"iTXt", xmp(7, "element")), b""),
    ]
    images = []
    for name, kind, before, after in made:
        with open(os.path.join(directory, name), "wb") as f:
            f.write(png_with(im, before, after))
        images.append((name, kind))
    return images


def make_webp(directory):
    """Lossy and lossless, with and without alpha, odd sizes (chroma upsampling at the edges), an animation."""
    rng = np.random.default_rng(11)
    images = []

    def add(name, kind, save):
        save(os.path.join(directory, name))
        images.append((name, kind))

    for w, h in [(64, 48), (133, 51), (5, 7), (640, 427), (1, 1)]:
        arr = picture(rng, w, h)
        im = Image.fromarray(arr, "RGB")
        alpha = Image.fromarray(np.dstack([arr, picture(rng, w, h)[..., 0]]), "RGBA")
        add(f"lossy_{w}x{h}.webp", "webp lossy", lambda p: im.save(p, quality=80))
        add(f"lossy_alpha_{w}x{h}.webp", "webp lossy + alpha", lambda p: alpha.save(p, quality=80))
        if w * h <= 100_000:  # noisy pictures compress poorly without loss
            add(f"lossless_{w}x{h}.webp", "webp lossless", lambda p: im.save(p, lossless=True))
            add(f"lossless_alpha_{w}x{h}.webp", "webp lossless + alpha", lambda p: alpha.save(p, lossless=True))
    frames = [Image.fromarray(picture(rng, 96, 64), "RGB") for _ in range(3)]
    add("animated_96x64.webp", "webp animated (first frame)",
        lambda p: frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, quality=80))
    return images


def lzw_uncompressed(indices, min_code_size):
    """LZW data that any GIF decoder reads, without compression: a clear code before the table would widen codes."""
    clear, end = 1 << min_code_size, (1 << min_code_size) + 1
    width = min_code_size + 1
    limit = (1 << width) - (1 << min_code_size) - 2
    codes, run = [clear], 0
    for value in indices:
        if run == limit:
            codes.append(clear)
            run = 0
        codes.append(value)
        run += 1
    codes.append(end)
    out, acc, bits = bytearray(), 0, 0
    for code in codes:
        acc |= code << bits
        bits += width
        while bits >= 8:
            out.append(acc & 255)
            acc >>= 8
            bits -= 8
    if bits:
        out.append(acc & 255)
    return bytes(out)


def gif_file(screen, rect, indices, min_code_size, global_palette=None, local_palette=None, transparency=None,
             interlace=False, second_frame=None):
    """A GIF written byte by byte, for what Pillow's writer never makes: a first frame smaller than the screen, or
    reaching past it, no colour table, a short table with indices past it, a local table, a transparent index.
    Palettes are (bits, colours); `indices` are in file order (interlaced already when `interlace`)."""
    def table(palette):
        bits, colours = palette
        raw = b"".join(bytes(c) for c in colours)
        return raw + b"\0" * ((3 << bits) - len(raw))

    def blocks(data):
        out = bytearray()
        for i in range(0, len(data), 255):
            out += bytes([len(data[i:i + 255])]) + data[i:i + 255]
        return bytes(out) + b"\0"

    def frame(rect, indices, local_palette, transparency, interlace):
        out = bytearray()
        if transparency is not None:
            out += b"!\xf9\x04\x01\x0a\x00" + bytes([transparency]) + b"\0"
        x, y, w, h = rect
        flags = (0x80 | (local_palette[0] - 1) if local_palette else 0) | (0x40 if interlace else 0)
        out += b"," + struct.pack("<HHHHB", x, y, w, h, flags)
        if local_palette:
            out += table(local_palette)
        return bytes(out) + bytes([min_code_size]) + blocks(lzw_uncompressed(indices, min_code_size))

    flags = 0x80 | (global_palette[0] - 1) if global_palette else 0
    out = bytearray(b"GIF89a") + struct.pack("<HHBBB", screen[0], screen[1], flags, 0, 0)
    if global_palette:
        out += table(global_palette)
    out += frame(rect, indices, local_palette, transparency, interlace)
    if second_frame:
        out += frame(*second_frame)
    return bytes(out) + b";"


def make_gif(directory):
    """GIFs as Pillow writes them (adaptive palettes, interlaced, gray, transparent, animated) and as it never does
    (see gif_file): Pillow reads the first frame onto the screen, index 0 or the transparent index around it."""
    rng = np.random.default_rng(17)
    images = []

    def add(name, kind, data=None, save=None):
        path = os.path.join(directory, name)
        if data is not None:
            with open(path, "wb") as f:
                f.write(data)
        else:
            save(path)
        images.append((name, kind))

    for w, h in [(64, 48), (133, 51), (5, 7), (640, 427)]:
        im = Image.fromarray(picture(rng, w, h), "RGB").convert("P", palette=Image.ADAPTIVE, colors=200)
        add(f"palette_{w}x{h}.gif", "gif adaptive palette", save=lambda p: im.save(p))
        add(f"flat_{w}x{h}.gif", "gif not interlaced", save=lambda p: im.save(p, interlace=False))
    gray = Image.fromarray(picture(rng, 33, 20)[..., 0], "L")
    add("gray_33x20.gif", "gif gray (identity palette)", save=lambda p: gray.save(p))
    clear = Image.fromarray(picture(rng, 40, 30), "RGB").convert("P", palette=Image.ADAPTIVE, colors=64)
    add("transparent_40x30.gif", "gif transparent index", save=lambda p: clear.save(p, transparency=5))
    frames = [Image.fromarray(picture(rng, 48, 32), "RGB").convert("P", palette=Image.ADAPTIVE) for _ in range(3)]
    add("animated_48x32.gif", "gif animated (first frame)",
        save=lambda p: frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0))
    colours = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(16)]
    small = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(4)]
    cells = [int(v) for v in rng.integers(0, 16, 6 * 5)]
    add("offset_frame_9x8.gif", "gif first frame inside the screen",
        gif_file((9, 8), (2, 1, 6, 5), cells, 4, global_palette=(4, colours)))
    add("offset_transparent_9x8.gif", "gif first frame inside the screen, transparent index",
        gif_file((9, 8), (2, 1, 6, 5), cells, 4, global_palette=(4, colours), transparency=7))
    add("overflow_frame_5x4.gif", "gif first frame reaching past the screen",
        gif_file((5, 4), (3, 2, 6, 5), cells, 4, global_palette=(4, colours)))
    add("local_palette_6x5.gif", "gif local colour table",
        gif_file((6, 5), (0, 0, 6, 5), [c % 4 for c in cells], 2, global_palette=(4, colours),
                 local_palette=(2, small)))
    add("short_palette_6x5.gif", "gif indices past the colour table",
        gif_file((6, 5), (0, 0, 6, 5), cells, 4, global_palette=(2, small)))
    add("no_palette_6x5.gif", "gif without a colour table",
        gif_file((6, 5), (0, 0, 6, 5), [c * 16 for c in cells], 8))
    rows = [cells[r * 6:(r + 1) * 6] + cells[:4] for r in range(5)] * 2  # 10 rows of 10
    order = list(range(0, 10, 8)) + list(range(4, 10, 8)) + list(range(2, 10, 4)) + list(range(1, 10, 2))
    add("interlaced_offset_12x11.gif", "gif interlaced first frame inside the screen",
        gif_file((12, 11), (1, 1, 10, 10), [v for r in order for v in rows[r]], 4, global_palette=(4, colours),
                 interlace=True, second_frame=((0, 0, 2, 2), [1, 2, 3, 4], None, None, False)))
    return images


def b64(data):
    return base64.b64encode(bytes(data)).decode("ascii")


def main(directory, reference_only=False, add_webp=False, add_exif=False, add_gif=False):
    image_dir = os.path.join(directory, "images")
    os.makedirs(image_dir, exist_ok=True)
    if reference_only or add_webp or add_exif or add_gif:
        with open(os.path.join(directory, "images.json")) as f:
            images = [(record["file"], record["kind"]) for record in json.load(f)["images"]]
        if add_webp:
            images = [image for image in images if not image[0].endswith(".webp")] + make_webp(image_dir)
        if add_exif:
            images = [image for image in images if not image[0].startswith("exif_")] + make_exif(image_dir)
        if add_gif:
            images = [image for image in images if not image[0].endswith(".gif")] + make_gif(image_dir)
    else:
        images = make(image_dir)
    records = []
    for index, (name, kind) in enumerate(images):
        with Image.open(os.path.join(image_dir, name)) as im:
            mode = im.mode
            rgb = im.convert("RGB")
            orientation = im.getexif().get(0x0112)
            # What viewers show: Pillow turns the image by its tag (read from the opened file).
            shown = ImageOps.exif_transpose(im).convert("RGB") if orientation else None
        raw = rgb.tobytes()
        stretched = rgb.resize((SIZE, SIZE), Image.BICUBIC)
        squared = expand2square(rgb).resize((SIZE, SIZE), Image.BICUBIC)
        record = {
            "file": name, "kind": kind, "pillow_mode": mode, "width": rgb.width, "height": rgb.height,
            "rgb_sha256": hashlib.sha256(raw).hexdigest(),
            "rgb": b64(raw) if len(raw) <= 30000 else None,
            "stretched": b64(stretched.tobytes()), "squared": b64(squared.tobytes()),
        }
        if orientation:
            record["orientation"] = orientation
            record["displayed"] = b64(shown.tobytes())
            record["displayed_width"], record["displayed_height"] = shown.size
        if index % 10 == 0:
            arr = np.asarray(stretched, dtype=np.uint8).astype(np.float32) / np.float32(255)
            chw = ((arr - MEAN) / STD).transpose(2, 0, 1)
            record["normalized"] = [float(v) for v in chw.reshape(-1)]
        records.append(record)
    with open(os.path.join(directory, "images.json"), "w") as f:
        json.dump({"pillow": PIL.__version__, "size": SIZE, "fill": FILL, "images": records}, f, indent=0)
    print(f"{len(records)} images, Pillow {PIL.__version__}")


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a not in ("--reference-only", "--add-webp", "--add-exif", "--add-gif")]
    main(arguments[0] if arguments else "Tests/ImagingTests/Fixtures", reference_only="--reference-only" in sys.argv,
         add_webp="--add-webp" in sys.argv, add_exif="--add-exif" in sys.argv, add_gif="--add-gif" in sys.argv)
