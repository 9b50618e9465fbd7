// JPEG, PNG, WebP, GIF and HEIF decoding through libjpeg-turbo, libpng, libwebp, giflib and libheif, with the longjmp
// error paths of the first two contained here, since Swift cannot call setjmp. Every failure returns a status and a
// message; nothing exits, and only the codecs under libheif (libde265, dav1d) may print, on damaged data.
#ifndef INFMLLM_IMAGE_CODECS_H
#define INFMLLM_IMAGE_CODECS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    INFMLLM_IMAGE_OK = 0,
    INFMLLM_IMAGE_CORRUPT = 1,    // the codec rejected the data; `message` says why
    INFMLLM_IMAGE_TOO_LARGE = 2,  // width x height exceeds max_pixels; nothing was allocated for pixels
    INFMLLM_IMAGE_NO_MEMORY = 3,
    INFMLLM_IMAGE_TRUNCATED = 4   // the data ends before the image does
} infmllm_image_status;

typedef struct {
    uint8_t *pixels;          // malloc'ed, width * height * channels * (bit_depth / 8) bytes; free with free()
    uint32_t width;
    uint32_t height;
    uint32_t channels;        // 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA or CMYK
    uint32_t bit_depth;       // 8, or 16 for PNG samples (big-endian)
    uint32_t is_cmyk;         // JPEG only: the 4 channels are CMYK
    uint32_t adobe_marker;    // JPEG only: an Adobe APP14 marker was present (inverted CMYK convention)
    uint32_t source_kind;     // PNG colour type, JPEG colour space (J_COLOR_SPACE), or WebP frame count
    uint32_t progressive;     // JPEG progressive, or PNG interlaced
    uint32_t orientation;     // JPEG, WebP and PNG: the Exif orientation tag, 1 to 8; 0 when there is none (read with
                              // the header, so a size probe has it too)
    char message[256];
} infmllm_image;

/// Decodes a whole JPEG held in memory. Grayscale stays 1 channel, YCbCr/RGB becomes RGB, CMYK/YCCK become CMYK.
int infmllm_decode_jpeg(const uint8_t *data, size_t size, uint64_t max_pixels, infmllm_image *image);

/// Decodes a whole PNG held in memory: palettes expanded to RGB, gray below 8 bits scaled to 8, transparency
/// chunks ignored, 16-bit samples kept; interlacing handled.
int infmllm_decode_png(const uint8_t *data, size_t size, uint64_t max_pixels, infmllm_image *image);

/// The Exif orientation of a PNG (1 to 8; 0 when it has none), as Pillow's `getexif()` finds it: its eXIf chunk, else
/// ImageMagick's "Raw profile type exif" text, and an XMP packet's tiff:Orientation where neither holds the tag.
uint32_t infmllm_png_orientation(const uint8_t *data, size_t size);

/// The orientation tag (1 to 8) of an Exif block (with or without its "Exif\0\0" identifier), or 0 when it has none
/// or the block is malformed.
uint32_t infmllm_exif_orientation(const uint8_t *exif, size_t size);

/// Decodes a whole WebP held in memory, still or animated (its first frame on the canvas), lossy or lossless, to RGBA,
/// as Pillow's WebP reader does through libwebp's animation decoder.
int infmllm_decode_webp(const uint8_t *data, size_t size, uint64_t max_pixels, infmllm_image *image);

/// Decodes the first frame of a GIF held in memory to RGB on its logical screen, as Pillow's `convert("RGB")` gives it:
/// the screen grown to hold the frame, index 0 (or the frame's transparent index) around it, indices past the colour
/// table (or without one) gray.
int infmllm_decode_gif(const uint8_t *data, size_t size, uint64_t max_pixels, infmllm_image *image);

/// Decodes the primary image of a HEIF file held in memory (HEIC or AVIF) to 8-bit RGB, the container's rotation,
/// mirroring and cropping applied (so its orientation is left 0: nothing is left to turn); an alpha plane is dropped.
int infmllm_decode_heif(const uint8_t *data, size_t size, uint64_t max_pixels, infmllm_image *image);

#endif
