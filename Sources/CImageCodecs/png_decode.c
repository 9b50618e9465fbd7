// PNG decoding with libpng's full API (the simplified API composites alpha and rescales 16-bit samples,
// which Pillow does not); errors longjmp back here instead of aborting.
#include "image_codecs.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t position;
    int truncated;
    char message[256];
} source;

static void on_error(png_structp png, png_const_charp text) {
    source *input = (source *)png_get_error_ptr(png);
    snprintf(input->message, sizeof input->message, "%s", text);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void on_read(png_structp png, png_bytep out, png_size_t count) {
    source *input = (source *)png_get_io_ptr(png);
    if (count > input->size - input->position) {
        input->truncated = 1;
        png_error(png, "the data ends before the image does");
    }
    memcpy(out, input->data + input->position, count);
    input->position += count;
}

int infmllm_decode_png(const uint8_t *data, size_t size, uint64_t max_pixels, infmllm_image *image) {
    memset(image, 0, sizeof *image);
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        snprintf(image->message, sizeof image->message, "not a PNG signature");
        return INFMLLM_IMAGE_CORRUPT;
    }
    image->orientation = infmllm_png_orientation(data, size);
    // The first chunk is IHDR: refuse a decompression bomb from its size before libpng reads further.
    if (size >= 24 && memcmp(data + 12, "IHDR", 4) == 0) {
        uint32_t width = (uint32_t)data[16] << 24 | (uint32_t)data[17] << 16 | (uint32_t)data[18] << 8 | data[19];
        uint32_t height = (uint32_t)data[20] << 24 | (uint32_t)data[21] << 16 | (uint32_t)data[22] << 8 | data[23];
        if ((uint64_t)width * height > max_pixels) {
            snprintf(image->message, sizeof image->message, "%u x %u pixels exceeds the limit of %llu", width, height,
                     (unsigned long long)max_pixels);
            image->width = width;
            image->height = height;
            return INFMLLM_IMAGE_TOO_LARGE;
        }
    }
    source input = {data, size, 0, 0, {0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &input, on_error, on_warning);
    if (!png) return INFMLLM_IMAGE_NO_MEMORY;
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return INFMLLM_IMAGE_NO_MEMORY;
    }
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        snprintf(image->message, sizeof image->message, "%s", input.message);
        return input.truncated ? INFMLLM_IMAGE_TRUNCATED : INFMLLM_IMAGE_CORRUPT;
    }
    png_set_read_fn(png, &input, on_read);
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    int color_type = png_get_color_type(png, info), bit_depth = png_get_bit_depth(png, info);
    image->source_kind = (uint32_t)color_type;
    image->progressive = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;
    if ((uint64_t)width * height > max_pixels) {
        snprintf(image->message, sizeof image->message, "%u x %u pixels exceeds the limit of %llu", width, height,
                 (unsigned long long)max_pixels);
        image->width = width;
        image->height = height;
        png_destroy_read_struct(&png, &info, NULL);
        return INFMLLM_IMAGE_TOO_LARGE;
    }
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    pixels = malloc(row_bytes * height);
    rows = malloc(sizeof(png_bytep) * height);
    if (!pixels || !rows) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return INFMLLM_IMAGE_NO_MEMORY;
    }
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + y * row_bytes;
    png_read_image(png, rows);
    // Chunks after the image data (and a missing IEND) do not change the pixels, so they are not read.
    image->pixels = pixels;
    image->width = width;
    image->height = height;
    image->channels = png_get_channels(png, info);
    image->bit_depth = png_get_bit_depth(png, info);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return INFMLLM_IMAGE_OK;
}
