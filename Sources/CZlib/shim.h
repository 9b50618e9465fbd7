// zlib for Swift: inflateInit2 and deflateInit2 are macros, so they get functions; raw deflate (window bits -15) is
// what ZIP entries hold, the gzip format (window bits 15 + 16) what Parquet's GZIP codec holds.
#ifndef INFMLLM_CZLIB_SHIM_H
#define INFMLLM_CZLIB_SHIM_H

#include <zlib.h>

static inline int infmllm_inflate_raw_init(z_stream *stream) { return inflateInit2(stream, -15); }

/// Inflates the gzip or zlib format, whichever the stream's header is.
static inline int infmllm_inflate_gzip_init(z_stream *stream) { return inflateInit2(stream, 15 + 32); }

static inline int infmllm_deflate_gzip_init(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

#endif
