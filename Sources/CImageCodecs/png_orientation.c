// The Exif orientation of a PNG as Pillow's `getexif()` finds it: an eXIf chunk (the last one), else ImageMagick's
// "Raw profile type exif" text (hex after three lines), and where neither holds the tag, an XMP packet's
// tiff:Orientation. Chunks are walked by their headers alone; only the last text chunk of each of those two names is
// read (inflated up to 1 MiB, Pillow's limit for text).
#include "image_codecs.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint32_t big32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

enum { text_limit = 1 << 20 };

// The text of a chunk body after its keyword: as stored, or inflated when `compressed`. NULL when it cannot be read.
static uint8_t *text_of(const uint8_t *body, size_t size, int compressed, size_t *length) {
    uint8_t *out = malloc(compressed ? text_limit : size + 1);
    if (out == NULL) return NULL;
    if (!compressed) {
        memcpy(out, body, size);
        *length = size;
        return out;
    }
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    if (inflateInit(&stream) != Z_OK) {
        free(out);
        return NULL;
    }
    stream.next_in = (Bytef *)body;
    stream.avail_in = (uInt)size;
    stream.next_out = out;
    stream.avail_out = text_limit;
    int status = inflate(&stream, Z_FINISH);
    *length = stream.total_out;
    inflateEnd(&stream);
    if (status != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

// "Raw profile type exif": a line break, "exif", the length, then the block in hex over the following lines.
static uint32_t raw_profile_orientation(const uint8_t *text, size_t size) {
    size_t line = 0, at = 0;
    while (at < size && line < 3) {
        if (text[at] == '\n') line++;
        at++;
    }
    uint8_t *block = malloc(size / 2 + 1);
    if (block == NULL) return 0;
    size_t count = 0;
    int high = -1;
    for (; at < size; at++) {
        int c = text[at], digit;
        if (c >= '0' && c <= '9') {
            digit = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            digit = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            digit = c - 'A' + 10;
        } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            continue;
        } else {
            free(block);
            return 0;  // Python's bytes.fromhex refuses it, and Pillow reads no orientation
        }
        if (high < 0) {
            high = digit;
        } else {
            block[count++] = (uint8_t)(high << 4 | digit);
            high = -1;
        }
    }
    uint32_t orientation = high < 0 ? infmllm_exif_orientation(block, count) : 0;
    free(block);
    return orientation;
}

// tiff:Orientation="N" or <tiff:Orientation>N, the first, one digit.
static uint32_t xmp_orientation(const uint8_t *text, size_t size) {
    static const char tag[] = "tiff:Orientation";
    size_t length = sizeof tag - 1;
    for (size_t at = 0; at + length + 2 < size; at++) {
        if (memcmp(text + at, tag, length) != 0) continue;
        const uint8_t *after = text + at + length;
        size_t skip = after[0] == '>' ? 1 : (after[0] == '=' && after[1] == '"') ? 2 : 0;
        if (skip == 0 || at + length + skip >= size) continue;
        uint8_t digit = after[skip];
        if (digit >= '0' && digit <= '9') return digit >= '1' && digit <= '8' ? (uint32_t)(digit - '0') : 0;
    }
    return 0;
}

// The text of a tEXt, zTXt or iTXt chunk body after the keyword ending at `key`; NULL when it cannot be read.
static uint8_t *chunk_text(const uint8_t *type, const uint8_t *body, size_t length, size_t key, size_t *text_length) {
    size_t offset = key + 1;
    int compressed = 0;
    if (type[0] == 'z') {
        offset += 1;  // the compression method
        compressed = 1;
    } else if (type[0] == 'i') {
        // Compression flag and method, then a language tag and a translated keyword, each ending in NUL.
        if (offset + 2 > length) return NULL;
        compressed = body[offset] != 0;
        offset += 2;
        for (int field = 0; field < 2; field++) {
            const uint8_t *stop = offset <= length ? memchr(body + offset, 0, length - offset) : NULL;
            if (stop == NULL) return NULL;
            offset = (size_t)(stop - body) + 1;
        }
    }
    if (offset > length) return NULL;
    return text_of(body + offset, length - offset, compressed, text_length);
}

typedef struct {
    const uint8_t *type, *body;
    size_t length, key;
} text_chunk;

uint32_t infmllm_png_orientation(const uint8_t *data, size_t size) {
    // The last chunk of each kind counts (Pillow keeps the last value of a key); only those two texts are read, so
    // a file of many text chunks costs one inflate each at most.
    const uint8_t *exif = NULL;
    size_t exif_size = 0;
    text_chunk raw = {0}, xmp = {0};
    size_t at = 8;
    while (at + 12 <= size) {
        size_t length = big32(data + at);
        if (length > size - at - 12) break;  // cut short: what was read counts
        const uint8_t *type = data + at + 4, *body = data + at + 8;
        if (memcmp(type, "IEND", 4) == 0) break;
        if (memcmp(type, "eXIf", 4) == 0) {
            exif = body;
            exif_size = length;
        } else if (memcmp(type, "tEXt", 4) == 0 || memcmp(type, "zTXt", 4) == 0 || memcmp(type, "iTXt", 4) == 0) {
            const uint8_t *end = memchr(body, 0, length);
            size_t key = end != NULL ? (size_t)(end - body) : length;
            text_chunk chunk = {type, body, length, key};
            if (end != NULL && key == 21 && memcmp(body, "Raw profile type exif", 21) == 0) raw = chunk;
            if (end != NULL && key == 17 && memcmp(body, "XML:com.adobe.xmp", 17) == 0) xmp = chunk;
        }
        at += length + 12;
    }
    uint32_t orientation = 0;
    size_t text_length = 0;
    if (exif != NULL) {
        orientation = infmllm_exif_orientation(exif, exif_size);
    } else if (raw.body != NULL) {
        uint8_t *text = chunk_text(raw.type, raw.body, raw.length, raw.key, &text_length);
        if (text != NULL) orientation = raw_profile_orientation(text, text_length);
        free(text);
    }
    if (orientation == 0 && xmp.body != NULL) {
        uint8_t *text = chunk_text(xmp.type, xmp.body, xmp.length, xmp.key, &text_length);
        if (text != NULL) orientation = xmp_orientation(text, text_length);
        free(text);
    }
    return orientation;
}
