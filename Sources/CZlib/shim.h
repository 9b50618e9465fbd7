// zlib for Swift: inflateInit2 is a macro, so it gets a function; raw deflate (window bits -15) is what ZIP
// entries hold.
#ifndef INFMLLM_CZLIB_SHIM_H
#define INFMLLM_CZLIB_SHIM_H

#include <zlib.h>

static inline int infmllm_inflate_raw_init(z_stream *stream) { return inflateInit2(stream, -15); }

#endif
