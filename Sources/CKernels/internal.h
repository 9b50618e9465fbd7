// Shared between the kernel files: panel geometry, bf16 conversion and the dispatch flag.
#ifndef INFMLLM_CKERNELS_INTERNAL_H
#define INFMLLM_CKERNELS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CK_PANEL 32

#define CK_TARGET_AMX                                                                                           \
    __attribute__((target("amx-tile,amx-bf16,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx512vnni,fma")))
#define CK_TARGET_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx512vnni,fma")))

#define CK_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma")))
#define CK_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define CK_TARGET_AVX2_VNNI __attribute__((target("avx2,fma,f16c,avxvnni")))

/// The calling thread's scratch `slot` of at least `bytes` (64-byte aligned), kept for its next product and freed
/// when the thread ends; NULL when memory is short.
enum { CK_SCRATCH_ROWS, CK_SCRATCH_PANELS, CK_SCRATCH_TILES, CK_SCRATCH_SUMS, CK_SCRATCH_SLOTS };
void *ck_thread_scratch(int slot, size_t bytes);

/// The AMX set's products (gemm_amx.c), with ck_gemm_bf16's contract; 0, having done nothing, when there is no
/// memory for the tile-ordered activations.
int ck_gemm_bf16_amx(int m, int n, int k, const uint16_t *a, ptrdiff_t lda, const uint16_t *packed, float *c,
                     ptrdiff_t ldc, int accumulate, const float *bias, int panel_begin, int panel_end);
/// The AMX set's int8 products, with ck_gemm_int8's contract and the AVX-512 VNNI kernel's results; 0, having done
/// nothing, for fewer than 16 rows (decoding, where the VNNI kernel streams the weights as fast) or when there is no
/// memory for the tile-ordered activations.
int ck_gemm_int8_amx(int m, int n, int k, const uint8_t *a, ptrdiff_t lda, const float *a_scales,
                     const int8_t *packed, const float *scales, const int32_t *sums, float *c, ptrdiff_t ldc,
                     int accumulate, int panel_begin, int panel_end);
/// TDPBF16PS from tiles: multiply-adds done (x 2), as ck_peak_bf16.
double ck_peak_amx(long iterations);

/// A mask of the first `count` of 16 lanes (all for 16 or more, none for 0 or fewer): the real columns of a 16-wide
/// part of a panel, as AVX-512 masked loads and stores take them.
static inline uint16_t ck_first_lanes(int count) {
    return count >= 16 ? (uint16_t)0xffff : count <= 0 ? (uint16_t)0 : (uint16_t)((1u << count) - 1);
}

static inline uint16_t ck_bf16_bits(float value) {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x0040u);  // NaN stays NaN
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

static inline float ck_bf16_value(uint16_t half) {
    uint32_t bits = (uint32_t)half << 16;
    float value;
    memcpy(&value, &bits, 4);
    return value;
}

static inline float ck_f16_value(uint16_t half) {
    _Float16 value;
    memcpy(&value, &half, 2);
    return (float)value;
}

#endif
