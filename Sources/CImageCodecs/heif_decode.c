// HEIF decoding through libheif: HEIC (HEVC, through libde265) and AVIF (AV1, through dav1d), the primary image with
// the container's rotation, mirroring and cropping applied (as Apple's, Android's and pillow-heif's readers show it),
// to 8-bit RGB (an alpha plane is left out, as Pillow's convert("RGB") drops it). The size is read from the container
// before anything is decoded, and libheif is held to it: the coded image may not be larger than the container says
// (Debian's libheif 1.15.1-1+deb12u2 checks the coded size against the context's size limit), so a small declared size
// cannot hide a large image from the pixel limit. Tiles are decoded on the calling thread. The codecs under libheif
// (libde265, dav1d) may write lines of their own to standard error on damaged data.
#include "image_codecs.h"

#include <libheif/heif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed(infmllm_image *image, struct heif_error error) {
    snprintf(image->message, sizeof image->message, "%s", error.message ? error.message : "libheif failed");
    size_t length = strlen(image->message);
    while (length > 0 && (image->message[length - 1] == '\n' || image->message[length - 1] == ' ')) {
        image->message[--length] = 0;
    }
    // libheif reports its own limits (a box or an image over them) as a memory error: the data is at fault.
    if (error.subcode == heif_suberror_Security_limit_exceeded) return INFMLLM_IMAGE_CORRUPT;
    if (error.code == heif_error_Memory_allocation_error) return INFMLLM_IMAGE_NO_MEMORY;
    if (error.subcode == heif_suberror_End_of_data) return INFMLLM_IMAGE_TRUNCATED;
    return INFMLLM_IMAGE_CORRUPT;
}

int infmllm_decode_heif(const uint8_t *data, size_t size, uint64_t max_pixels, infmllm_image *image) {
    memset(image, 0, sizeof *image);
    struct heif_context *context = heif_context_alloc();
    if (context == NULL) return INFMLLM_IMAGE_NO_MEMORY;
    heif_context_set_max_decoding_threads(context, 0);
    struct heif_image_handle *handle = NULL;
    struct heif_image *decoded = NULL;
    int status = INFMLLM_IMAGE_OK;
    struct heif_error error = heif_context_read_from_memory_without_copy(context, data, size, NULL);
    if (error.code == heif_error_Ok) error = heif_context_get_primary_image_handle(context, &handle);
    if (error.code != heif_error_Ok) {
        status = failed(image, error);
        goto done;
    }
    // The size as shown: the handle's size takes the rotation and cropping into account.
    int width = heif_image_handle_get_width(handle), height = heif_image_handle_get_height(handle);
    if (width <= 0 || height <= 0) {
        snprintf(image->message, sizeof image->message, "the image has no size");
        status = INFMLLM_IMAGE_CORRUPT;
        goto done;
    }
    image->width = (uint32_t)width;
    image->height = (uint32_t)height;
    if ((uint64_t)width * (uint64_t)height > max_pixels) {
        status = INFMLLM_IMAGE_TOO_LARGE;
        goto done;
    }
    // The largest side libheif may decode: the declared sides (before and after rotation and cropping), rounded up to
    // the coding block and a block more.
    int side = width > height ? width : height;
    int ispe_width = heif_image_handle_get_ispe_width(handle), ispe_height = heif_image_handle_get_ispe_height(handle);
    if (ispe_width > side) side = ispe_width;
    if (ispe_height > side) side = ispe_height;
    heif_context_set_maximum_image_size_limit(context, (side + 64 + 63) / 64 * 64);
    error = heif_decode_image(handle, &decoded, heif_colorspace_RGB, heif_chroma_interleaved_RGB, NULL);
    if (error.code != heif_error_Ok) {
        status = failed(image, error);
        goto done;
    }
    int stride = 0;
    const uint8_t *plane = heif_image_get_plane_readonly(decoded, heif_channel_interleaved, &stride);
    int decoded_width = heif_image_get_width(decoded, heif_channel_interleaved);
    int decoded_height = heif_image_get_height(decoded, heif_channel_interleaved);
    if (plane == NULL || decoded_width != width || decoded_height != height || stride < width * 3) {
        snprintf(image->message, sizeof image->message, "the decoded image is not the size its container declares");
        status = INFMLLM_IMAGE_CORRUPT;
        goto done;
    }
    image->pixels = malloc((size_t)width * (size_t)height * 3);
    if (image->pixels == NULL) {
        status = INFMLLM_IMAGE_NO_MEMORY;
        goto done;
    }
    for (int row = 0; row < height; row++) {
        memcpy(image->pixels + (size_t)row * (size_t)width * 3, plane + (size_t)row * (size_t)stride, (size_t)width * 3);
    }
    image->channels = 3;
    image->bit_depth = 8;
done:
    if (decoded != NULL) heif_image_release(decoded);
    if (handle != NULL) heif_image_handle_release(handle);
    heif_context_free(context);
    return status;
}
