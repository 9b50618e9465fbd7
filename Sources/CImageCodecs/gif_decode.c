// GIF decoding through giflib, as Pillow reads a GIF for `convert("RGB")`: the first frame only, on a canvas the size
// of the logical screen (grown to hold the frame where it reaches past it), the rest of the canvas filled with colour
// index 0 or, when the frame declares one, its transparent index; indices mapped through the frame's own colour table,
// else the global one, and an index past the table (or with no table at all) read as gray (i, i, i). The frames after
// the first are never read.
#include "image_codecs.h"

#include <gif_lib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t offset;
} gif_source;

static int read_bytes(GifFileType *file, GifByteType *out, int count) {
    gif_source *source = file->UserData;
    size_t left = source->size - source->offset;
    size_t n = (size_t)count < left ? (size_t)count : left;
    memcpy(out, source->data + source->offset, n);
    source->offset += n;
    return (int)n;
}

// The status and message for giflib's error `code`: a read that found the data at its end is truncation; giflib
// also reports a frame's impossible code size as a failed read, which is damage.
static int failure(infmllm_image *image, int code, const gif_source *source) {
    int exhausted = source->offset >= source->size;
    if ((code == D_GIF_ERR_READ_FAILED || code == D_GIF_ERR_EOF_TOO_SOON) && exhausted) {
        snprintf(image->message, sizeof image->message, "the data ends before the image does");
        return INFMLLM_IMAGE_TRUNCATED;
    }
    const char *text = code == D_GIF_ERR_READ_FAILED ? "damaged data" : GifErrorString(code);
    snprintf(image->message, sizeof image->message, "%s", text != NULL ? text : "undecodable");
    return INFMLLM_IMAGE_CORRUPT;
}

int infmllm_decode_gif(const uint8_t *data, size_t size, uint64_t max_pixels, infmllm_image *image) {
    memset(image, 0, sizeof *image);
    // Pillow opens the two versions of the format only.
    if (size < 6 || (memcmp(data, "GIF87a", 6) != 0 && memcmp(data, "GIF89a", 6) != 0)) {
        snprintf(image->message, sizeof image->message, "not a GIF87a or GIF89a file");
        return size < 6 ? INFMLLM_IMAGE_TRUNCATED : INFMLLM_IMAGE_CORRUPT;
    }
    gif_source source = {data, size, 0};
    int error = 0;
    GifFileType *file = DGifOpen(&source, read_bytes, &error);
    if (file == NULL) return failure(image, error, &source);

    int status = INFMLLM_IMAGE_OK;
    int transparency = -1;
    GifPixelType *line = NULL;
    // Up to the first image descriptor: extensions on the way (a graphic control extension's transparent index,
    // kept by the last one that sets it), then the frame's place and colour table.
    for (;;) {
        GifRecordType record;
        if (DGifGetRecordType(file, &record) == GIF_ERROR) {
            status = failure(image, file->Error, &source);
            goto done;
        }
        if (record == TERMINATE_RECORD_TYPE) {
            snprintf(image->message, sizeof image->message, "no frame");
            status = INFMLLM_IMAGE_CORRUPT;
            goto done;
        }
        if (record == EXTENSION_RECORD_TYPE) {
            int code = 0;
            GifByteType *block = NULL;
            if (DGifGetExtension(file, &code, &block) == GIF_ERROR) {
                status = failure(image, file->Error, &source);
                goto done;
            }
            if (code == GRAPHICS_EXT_FUNC_CODE && block != NULL && block[0] >= 4 && (block[1] & 1))
                transparency = block[4];
            while (block != NULL) {
                if (DGifGetExtensionNext(file, &block) == GIF_ERROR) {
                    status = failure(image, file->Error, &source);
                    goto done;
                }
            }
            continue;
        }
        if (record == IMAGE_DESC_RECORD_TYPE) break;
    }
    if (DGifGetImageDesc(file) == GIF_ERROR) {
        status = failure(image, file->Error, &source);
        goto done;
    }
    const GifImageDesc *frame = &file->Image;
    uint64_t right = (uint64_t)frame->Left + (uint64_t)frame->Width;
    uint64_t bottom = (uint64_t)frame->Top + (uint64_t)frame->Height;
    uint64_t width = right > (uint64_t)file->SWidth ? right : (uint64_t)file->SWidth;
    uint64_t height = bottom > (uint64_t)file->SHeight ? bottom : (uint64_t)file->SHeight;
    image->width = (uint32_t)width;
    image->height = (uint32_t)height;
    image->source_kind = 1;
    if (width * height > max_pixels) {
        status = INFMLLM_IMAGE_TOO_LARGE;
        goto done;
    }
    const ColorMapObject *table = frame->ColorMap != NULL ? frame->ColorMap : file->SColorMap;
    uint8_t colours[256 * 3];
    for (int i = 0; i < 256; i++) {
        int known = table != NULL && i < table->ColorCount;
        colours[3 * i + 0] = known ? table->Colors[i].Red : (uint8_t)i;
        colours[3 * i + 1] = known ? table->Colors[i].Green : (uint8_t)i;
        colours[3 * i + 2] = known ? table->Colors[i].Blue : (uint8_t)i;
    }
    image->pixels = malloc(width * height * 3 > 0 ? width * height * 3 : 1);
    line = malloc(frame->Width > 0 ? (size_t)frame->Width : 1);
    if (image->pixels == NULL || line == NULL) {
        status = INFMLLM_IMAGE_NO_MEMORY;
        goto done;
    }
    image->channels = 3;
    image->bit_depth = 8;
    // The canvas around the frame (none when the frame covers it, as it usually does).
    if (frame->Left > 0 || frame->Top > 0 || right < width || bottom < height) {
        const uint8_t *fill = colours + 3 * (transparency >= 0 ? transparency : 0);
        for (uint64_t i = 0; i < width * height; i++) memcpy(image->pixels + 3 * i, fill, 3);
    }
    // Rows come in file order; an interlaced frame stores every 8th row from 0, every 8th from 4, every 4th from 2,
    // then every 2nd from 1.
    static const int starts[4] = {0, 4, 2, 1}, steps[4] = {8, 8, 4, 2};
    int passes = frame->Interlace ? 4 : 1;
    for (int pass = 0; pass < passes; pass++) {
        int start = frame->Interlace ? starts[pass] : 0, step = frame->Interlace ? steps[pass] : 1;
        for (int row = start; row < frame->Height; row += step) {
            if (DGifGetLine(file, line, frame->Width) == GIF_ERROR) {
                status = failure(image, file->Error, &source);
                goto done;
            }
            uint8_t *out = image->pixels + 3 * ((uint64_t)(frame->Top + row) * width + (uint64_t)frame->Left);
            for (int x = 0; x < frame->Width; x++) memcpy(out + 3 * x, colours + 3 * line[x], 3);
        }
    }

done:
    free(line);
    DGifCloseFile(file, &error);
    return status;
}
