// The orientation tag of an Exif block (a TIFF structure), read with every offset checked against its size.
#include "image_codecs.h"

#include <string.h>

static uint32_t read16(const uint8_t *p, int little) {
    return little ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : (uint32_t)p[0] << 8 | (uint32_t)p[1];
}

static uint32_t read32(const uint8_t *p, int little) {
    return little ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
                  : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

uint32_t infmllm_exif_orientation(const uint8_t *exif, size_t size) {
    // A JPEG APP1 segment (and some WebP EXIF chunks) start with the Exif identifier; the TIFF header follows.
    if (size >= 6 && memcmp(exif, "Exif\0\0", 6) == 0) {
        exif += 6;
        size -= 6;
    }
    if (size < 8) return 0;
    int little;
    if (memcmp(exif, "II*\0", 4) == 0) {
        little = 1;
    } else if (memcmp(exif, "MM\0*", 4) == 0) {
        little = 0;
    } else {
        return 0;
    }
    uint64_t ifd = read32(exif + 4, little);
    if (ifd + 2 > size) return 0;
    uint32_t entries = read16(exif + ifd, little);
    uint32_t orientation = 0;
    for (uint32_t index = 0; index < entries; index++) {
        uint64_t entry = ifd + 2 + (uint64_t)index * 12;
        if (entry + 12 > size) break;
        if (read16(exif + entry, little) != 0x0112 || read32(exif + entry + 4, little) < 1) continue;
        // The first value, held in the entry itself: a SHORT or SSHORT (as written), a LONG, or a BYTE or
        // UNDEFINED, which Pillow reads too. A later entry for the tag replaces an earlier one, as in Pillow.
        // Only values held in the entry's four bytes are read (more would be at an offset, for a tag of one value).
        uint32_t type = read16(exif + entry + 2, little), count = read32(exif + entry + 4, little), value;
        if ((type == 3 || type == 8) && count <= 2) {
            value = read16(exif + entry + 8, little);
        } else if ((type == 4 || type == 9) && count == 1) {
            value = read32(exif + entry + 8, little);
        } else if ((type == 1 || type == 7) && count <= 4) {
            value = exif[entry + 8];
        } else {
            continue;
        }
        orientation = value >= 1 && value <= 8 ? value : 0;
    }
    return orientation;
}
