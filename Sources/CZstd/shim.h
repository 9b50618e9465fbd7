// Zstandard for Swift: the one-shot decompression Parquet's ZSTD pages need.
#ifndef INFMLLM_CZSTD_SHIM_H
#define INFMLLM_CZSTD_SHIM_H

#include <zstd.h>

#endif
