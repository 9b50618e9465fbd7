// JPEG decoding with libjpeg-turbo; errors longjmp back here instead of calling exit().
#include "image_codecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf escape;
    int truncated;
    char message[JMSG_LENGTH_MAX];
} error_manager;

static void on_error(j_common_ptr info) {
    error_manager *errors = (error_manager *)info->err;
    (*info->err->format_message)(info, errors->message);
    longjmp(errors->escape, 1);
}

// Scans a progressive file may take: real files have about ten, and each scan passes over every block of the image,
// so a small file of many thousands of empty scans would hold a decoder for hours (libjpeg-turbo suggests a limit
// of this order).
#define INFMLLM_JPEG_MAX_SCANS 500

typedef struct {
    struct jpeg_progress_mgr base;
    error_manager *errors;
} scan_limit;

static void on_progress(j_common_ptr info) {
    j_decompress_ptr decompress = (j_decompress_ptr)info;
    if (info->is_decompressor && decompress->input_scan_number > INFMLLM_JPEG_MAX_SCANS) {
        scan_limit *limit = (scan_limit *)info->progress;
        snprintf(limit->errors->message, sizeof limit->errors->message,
                 "more than %d progressive scans (real images have a few dozen at most)", INFMLLM_JPEG_MAX_SCANS);
        longjmp(limit->errors->escape, 1);
    }
}

static void on_message(j_common_ptr info, int level) {
    error_manager *errors = (error_manager *)info->err;
    // Warnings (level -1): a premature end of data is an error for us, as it is for Pillow by default.
    if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) {
        errors->truncated = 1;
        (*info->err->format_message)(info, errors->message);
    }
}

int infmllm_decode_jpeg(const uint8_t *data, size_t size, uint64_t max_pixels, infmllm_image *image) {
    memset(image, 0, sizeof *image);
    struct jpeg_decompress_struct info;
    error_manager errors;
    memset(&errors, 0, sizeof errors);
    info.err = jpeg_std_error(&errors.base);
    errors.base.error_exit = on_error;
    errors.base.emit_message = on_message;
    uint8_t *volatile pixels = NULL;
    if (setjmp(errors.escape)) {
        free(pixels);
        jpeg_destroy_decompress(&info);
        snprintf(image->message, sizeof image->message, "%s", errors.message);
        return INFMLLM_IMAGE_CORRUPT;
    }
    jpeg_create_decompress(&info);
    scan_limit progress = {.base = {.progress_monitor = on_progress}, .errors = &errors};
    info.progress = &progress.base;
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_save_markers(&info, JPEG_APP0 + 14, 0);
    jpeg_save_markers(&info, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&info, TRUE);
    for (jpeg_saved_marker_ptr marker = info.marker_list; marker != NULL; marker = marker->next) {
        if (marker->marker == JPEG_APP0 + 1 && marker->data_length >= 6 && memcmp(marker->data, "Exif\0\0", 6) == 0) {
            image->orientation = infmllm_exif_orientation(marker->data, marker->data_length);
            break;
        }
    }
    if ((uint64_t)info.image_width * info.image_height > max_pixels) {
        snprintf(image->message, sizeof image->message, "%u x %u pixels exceeds the limit of %llu", info.image_width,
                 info.image_height, (unsigned long long)max_pixels);
        image->width = info.image_width;
        image->height = info.image_height;
        jpeg_destroy_decompress(&info);
        return INFMLLM_IMAGE_TOO_LARGE;
    }
    image->source_kind = info.jpeg_color_space;
    image->adobe_marker = info.saw_Adobe_marker;
    image->progressive = info.progressive_mode;
    switch (info.jpeg_color_space) {
    case JCS_GRAYSCALE: info.out_color_space = JCS_GRAYSCALE; break;
    case JCS_CMYK:
    case JCS_YCCK: info.out_color_space = JCS_CMYK; image->is_cmyk = 1; break;
    default: info.out_color_space = JCS_RGB; break;
    }
    // Pillow's defaults: accurate integer IDCT and fancy upsampling.
    info.dct_method = JDCT_ISLOW;
    info.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&info);
    size_t row_bytes = (size_t)info.output_width * info.output_components;
    pixels = malloc(row_bytes * info.output_height);
    if (!pixels) {
        jpeg_destroy_decompress(&info);
        snprintf(image->message, sizeof image->message, "cannot allocate %zu bytes", row_bytes * info.output_height);
        return INFMLLM_IMAGE_NO_MEMORY;
    }
    while (info.output_scanline < info.output_height && !errors.truncated) {
        JSAMPROW row = pixels + (size_t)info.output_scanline * row_bytes;
        jpeg_read_scanlines(&info, &row, 1);
    }
    if (errors.truncated) {
        free(pixels);
        jpeg_destroy_decompress(&info);
        snprintf(image->message, sizeof image->message, "%s", errors.message);
        return INFMLLM_IMAGE_TRUNCATED;
    }
    jpeg_finish_decompress(&info);
    image->pixels = pixels;
    image->width = info.output_width;
    image->height = info.output_height;
    image->channels = (uint32_t)info.output_components;
    image->bit_depth = 8;
    jpeg_destroy_decompress(&info);
    return INFMLLM_IMAGE_OK;
}
