// Probes of the machine's ceilings: bf16 multiply-add throughput from registers and memory read bandwidth.
#include "ckernels.h"
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

CK_TARGET_BF16 static double peak_avx512bf16(long iterations) {
    __m512 acc[24];
    for (int i = 0; i < 24; i++) acc[i] = _mm512_set1_ps((float)i);
    __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = (__m512bh)_mm512_set1_epi32(0x3c003c00);
    for (long n = 0; n < iterations; n++) {
        for (int i = 0; i < 24; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    }
    float sink = 0;
    for (int i = 0; i < 24; i++) sink += _mm512_reduce_add_ps(acc[i]);
    volatile float keep = sink;
    (void)keep;
    return (double)iterations * 24 * 32 * 2;
}

CK_TARGET_AVX512 static double peak_avx512(long iterations) {
    __m512 acc[24];
    for (int i = 0; i < 24; i++) acc[i] = _mm512_set1_ps((float)i);
    __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-3f);
    for (long n = 0; n < iterations; n++) {
        for (int i = 0; i < 24; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    }
    __m512 sum = acc[0];
    for (int i = 1; i < 24; i++) sum = _mm512_add_ps(sum, acc[i]);
    volatile float keep = _mm512_reduce_add_ps(sum);
    (void)keep;
    return (double)iterations * 24 * 16 * 2;
}

CK_TARGET_AVX2 static double peak_avx2(long iterations) {
    __m256 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
    __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-3f);
    for (long n = 0; n < iterations; n++) {
        for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    }
    __m256 sum = acc[0];
    for (int i = 1; i < 12; i++) sum = _mm256_add_ps(sum, acc[i]);
    volatile float keep = _mm256_cvtss_f32(sum);
    (void)keep;
    return (double)iterations * 12 * 8 * 2;
}

#endif

double ck_peak_bf16(long iterations) {
#if defined(__x86_64__)
    int set = ck_kernels();
    if (set == CK_KERNELS_AMX) return ck_peak_amx(iterations);
    if (set == CK_KERNELS_AVX512_BF16) return peak_avx512bf16(iterations);
    if (set == CK_KERNELS_AVX512) return peak_avx512(iterations);
    if (set != CK_KERNELS_PORTABLE) return peak_avx2(iterations);
#endif
    float acc[64];
    for (int i = 0; i < 64; i++) acc[i] = (float)i;
    for (long n = 0; n < iterations; n++) {
        for (int i = 0; i < 64; i++) acc[i] = acc[i] * 0.999f + 1e-3f;
        __asm__ volatile("" : : "r"(acc) : "memory");
    }
    volatile float keep = acc[3];
    (void)keep;
    return (double)iterations * 64 * 2;
}

float ck_read_sum(const float *x, size_t begin, size_t end) {
#pragma clang fp reassociate(on)
    float sum = 0;
    for (size_t i = begin; i < end; i++) sum += x[i];
    return sum;
}
