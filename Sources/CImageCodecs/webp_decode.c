// WebP decoding through libwebp's animation decoder, as Pillow reads every WebP file (still or animated): the first
// frame, composited onto the canvas, as RGBA. The size is read from the header before anything is allocated.
#include "image_codecs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <webp/decode.h>
#include <webp/demux.h>

// The RIFF header's declared size: the whole file is 8 bytes more.
static uint64_t riff_size(const uint8_t *data, size_t size) {
    if (size < 8) return 0;
    return (uint64_t)data[4] | (uint64_t)data[5] << 8 | (uint64_t)data[6] << 16 | (uint64_t)data[7] << 24;
}

int infmllm_decode_webp(const uint8_t *data, size_t size, uint64_t max_pixels, infmllm_image *image) {
    memset(image, 0, sizeof *image);
    int width = 0, height = 0;
    // The canvas size (the VP8X chunk of an extended file, else the bitstream's own).
    if (!WebPGetInfo(data, size, &width, &height)) {
        int truncated = size < 8 || riff_size(data, size) + 8 > size;
        snprintf(image->message, sizeof image->message, "%s",
                 truncated ? "the data ends before the header does" : "not a valid WebP header");
        return truncated ? INFMLLM_IMAGE_TRUNCATED : INFMLLM_IMAGE_CORRUPT;
    }
    image->width = (uint32_t)width;
    image->height = (uint32_t)height;
    if (riff_size(data, size) + 8 > size) {
        snprintf(image->message, sizeof image->message, "the data ends before the image does");
        return INFMLLM_IMAGE_TRUNCATED;
    }
    // The EXIF chunk of an extended file, for its orientation: the demuxer reads chunk headers only.
    WebPData whole = {data, size};
    WebPDemuxer *demuxer = WebPDemux(&whole);
    if (demuxer != NULL) {
        WebPChunkIterator chunk;
        if (WebPDemuxGetChunk(demuxer, "EXIF", 1, &chunk)) {
            image->orientation = infmllm_exif_orientation(chunk.chunk.bytes, chunk.chunk.size);
            WebPDemuxReleaseChunkIterator(&chunk);
        }
        WebPDemuxDelete(demuxer);
    }
    if ((uint64_t)width * (uint64_t)height > max_pixels) return INFMLLM_IMAGE_TOO_LARGE;

    WebPAnimDecoderOptions options;
    if (!WebPAnimDecoderOptionsInit(&options)) {
        snprintf(image->message, sizeof image->message, "libwebp's demuxer is not the version built against");
        return INFMLLM_IMAGE_CORRUPT;
    }
    options.color_mode = MODE_RGBA;
    options.use_threads = 0;
    WebPData input = {data, size};
    WebPAnimDecoder *decoder = WebPAnimDecoderNew(&input, &options);
    if (decoder == NULL) {
        snprintf(image->message, sizeof image->message, "the container is damaged");
        return INFMLLM_IMAGE_CORRUPT;
    }
    WebPAnimInfo info;
    uint8_t *frame = NULL;
    int timestamp = 0;
    int status = INFMLLM_IMAGE_OK;
    if (!WebPAnimDecoderGetInfo(decoder, &info) || info.frame_count < 1) {
        snprintf(image->message, sizeof image->message, "no frame");
        status = INFMLLM_IMAGE_CORRUPT;
    } else if (!WebPAnimDecoderGetNext(decoder, &frame, &timestamp) || frame == NULL) {
        snprintf(image->message, sizeof image->message, "the bitstream is damaged");
        status = INFMLLM_IMAGE_CORRUPT;
    } else {
        size_t bytes = (size_t)info.canvas_width * info.canvas_height * 4;
        image->pixels = malloc(bytes);
        if (image->pixels == NULL) {
            status = INFMLLM_IMAGE_NO_MEMORY;
        } else {
            memcpy(image->pixels, frame, bytes);
            image->width = info.canvas_width;
            image->height = info.canvas_height;
            image->channels = 4;
            image->bit_depth = 8;
            image->source_kind = info.frame_count;
        }
    }
    WebPAnimDecoderDelete(decoder);
    return status;
}
