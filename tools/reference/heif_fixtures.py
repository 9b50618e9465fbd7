"""HEIC and AVIF fixtures and their pixels as independent readers give them: HEIC written and read by pillow-heif
(libheif with x265 and libde265 of its own, not the system's), AVIF written and read by Pillow's AVIF plugin
(libavif). For each file, the RGB pixels of `Image.open(path).convert("RGB")` go beside it as FILE.rgb, and
heif.json lists them.

    python3 -m venv venv && venv/bin/pip install pillow==13.0.0 pillow-heif==1.9.0
    venv/bin/python tools/reference/heif_fixtures.py Tests/ImagingTests/Fixtures/heif

Our decoder (Debian's libheif 1.15 with its libde265 and dav1d) is held to these pixels within a bound the test
states: HEVC and AV1 decoding are exact by their standards, but the readers convert YUV to RGB each their own way
(libavif interpolates subsampled chroma, libheif 1.15 repeats it).
"""

import json
import os
import sys

import pillow_heif
from PIL import Image, ImageDraw

pillow_heif.register_heif_opener()


def photo(width, height, mode="RGB"):
    """Smooth gradients, hard edges and saturated shapes: what chroma subsampling and conversion act on."""
    image = Image.new("RGB", (width, height))
    pixels = image.load()
    for y in range(height):
        for x in range(width):
            pixels[x, y] = (x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) * 3 % 256)
    draw = ImageDraw.Draw(image)
    draw.rectangle((width // 4, height // 4, width // 2, height // 2), fill=(220, 30, 40))
    draw.ellipse((width // 2, height // 3, width - 3, height - 3), fill=(20, 200, 90))
    draw.line((0, height - 1, width - 1, 0), fill=(255, 255, 255), width=2)
    if mode == "RGBA":
        image = image.convert("RGBA")
        alpha = Image.new("L", (width, height), 255)
        ImageDraw.Draw(alpha).rectangle((0, 0, width // 3, height // 3), fill=0)
        image.putalpha(alpha)
    return image


def main(directory):
    os.makedirs(directory, exist_ok=True)
    cases = []

    def add(name, kind, image, **options):
        path = os.path.join(directory, name)
        image.save(path, **options)
        with Image.open(path) as opened:
            rgb = opened.convert("RGB")
        with open(path + ".rgb", "wb") as out:
            out.write(rgb.tobytes())
        cases.append({"file": name, "kind": kind, "width": rgb.width, "height": rgb.height})

    add("photo_64x48.heic", "heic 4:2:0", photo(64, 48), quality=90)
    add("photo_63x47.heic", "heic 4:2:0, odd size", photo(63, 47), quality=90)
    add("alpha_40x30.heic", "heic with alpha (dropped)", photo(40, 30, "RGBA"), quality=90)
    # Exif orientation 6 on saving: pillow-heif writes it as the container's rotation (irot) and reads the image
    # turned, 48 x 64, with the tag reset to 1.
    turned = Image.Exif()
    turned[0x0112] = 6
    add("rotated_64x48.heic", "heic turned by its container (irot)", photo(64, 48), quality=90, exif=turned.tobytes())
    add("photo_64x48.avif", "avif", photo(64, 48), quality=90)
    add("photo_33x21.avif", "avif, odd size", photo(33, 21), quality=90)
    add("alpha_40x30.avif", "avif with alpha (dropped)", photo(40, 30, "RGBA"), quality=90)
    add("photo_444_64x48.avif", "avif 4:4:4", photo(64, 48), quality=90, subsampling="4:4:4")
    # A HEIC whose container declares 64 x 48 for an image coded at 1024 x 1024 (its ispe box rewritten): a decoder
    # that trusts the declared size before decoding would decode 22 times the pixels it checked.
    lying = os.path.join(directory, "lying_size.heic")
    Image.new("RGB", (1024, 1024), (90, 120, 150)).save(lying, quality=50)
    with open(lying, "rb") as file:
        data = bytearray(file.read())
    at = data.index(b"ispe") + 8  # after the box type, its version and flags
    data[at:at + 8] = (64).to_bytes(4, "big") + (48).to_bytes(4, "big")
    with open(lying, "wb") as file:
        file.write(data)
    with open(os.path.join(directory, "heif.json"), "w") as out:
        json.dump({"pillow_heif": pillow_heif.__version__, "libheif": pillow_heif.libheif_version(),
                   "cases": cases}, out, indent=1)
        out.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
