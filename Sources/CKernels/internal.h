// Shared between the kernel files: panel geometry, bf16 conversion and the dispatch flag.
#ifndef INFMLLM_CKERNELS_INTERNAL_H
#define INFMLLM_CKERNELS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CK_PANEL 32

#define CK_TARGET_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx512vnni,fma")))

#define CK_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma")))
#define CK_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define CK_TARGET_AVX2_VNNI __attribute__((target("avx2,fma,f16c,avxvnni")))

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
