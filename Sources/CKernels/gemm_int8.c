// c = a Wᵀ over int8 panels with per-group scales: each k block of a panel is widened to bf16 (value x scale) in a
// buffer that stays in L1, then multiplied by the bf16 micro-kernel; decoding thus reads half the bytes of bf16.
#include "ckernels.h"
#include "internal.h"

#include <immintrin.h>
#include <stdlib.h>

#define CK_INT8_KC 256  // pairs per widened block: 32 KiB of bf16, a multiple of the scale group


CK_TARGET_BF16 static void widen_avx512(const int8_t *q, const float *group_scales, int first_pair, int pairs,
                                        uint16_t *out) {
    const __m512i low = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i high = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int p = 0; p < pairs; p++) {
        int pair = first_pair + p;
        if (p == 0 || pair % (CK_INT8_GROUP / 2) == 0) {
            const float *scale = group_scales + (size_t)(pair / (CK_INT8_GROUP / 2)) * CK_PANEL;
            __m512 lo = _mm512_loadu_ps(scale), hi = _mm512_loadu_ps(scale + 16);
            s0 = _mm512_permutexvar_ps(low, lo);
            s1 = _mm512_permutexvar_ps(high, lo);
            s2 = _mm512_permutexvar_ps(low, hi);
            s3 = _mm512_permutexvar_ps(high, hi);
        }
        const int8_t *in = q + (size_t)p * 64;
        __m512 f0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)in))), s0);
        __m512 f1 =
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(in + 16)))), s1);
        __m512 f2 =
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(in + 32)))), s2);
        __m512 f3 =
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(in + 48)))), s3);
        _mm512_storeu_si512(out + (size_t)p * 64, (__m512i)_mm512_cvtne2ps_pbh(f1, f0));
        _mm512_storeu_si512(out + (size_t)p * 64 + 32, (__m512i)_mm512_cvtne2ps_pbh(f3, f2));
    }
}

static void widen_portable(const int8_t *q, const float *group_scales, int first_pair, int pairs, uint16_t *out) {
    for (int p = 0; p < pairs; p++) {
        int pair = first_pair + p;
        const float *scale = group_scales + (size_t)(pair / (CK_INT8_GROUP / 2)) * CK_PANEL;
        for (int e = 0; e < 64; e++) out[(size_t)p * 64 + e] = ck_bf16_bits((float)q[(size_t)p * 64 + e] * scale[e / 2]);
    }
}

CK_TARGET_BF16 static void gemm_int8_avx512(int m, int n, int k, const uint16_t *a, ptrdiff_t lda,
                                            const int8_t *packed, const float *scales, float *c, ptrdiff_t ldc,
                                            int accumulate, int panel_begin, int panel_end) {
    int pairs = (k + 1) / 2, groups = (k + CK_INT8_GROUP - 1) / CK_INT8_GROUP;
    size_t panel_size = (size_t)pairs * CK_PANEL * 2;
    uint16_t buffer[CK_INT8_KC * 64] __attribute__((aligned(64)));
    for (int panel = panel_begin; panel < panel_end; panel++) {
        int column = panel * CK_PANEL, columns = n - column < CK_PANEL ? n - column : CK_PANEL;
        const int8_t *q = packed + panel * panel_size;
        const float *panel_scales = scales + (size_t)panel * groups * CK_PANEL;
        for (int kb = 0; kb < pairs; kb += CK_INT8_KC) {
            int count = pairs - kb < CK_INT8_KC ? pairs - kb : CK_INT8_KC;
            widen_avx512(q + (size_t)kb * 64, panel_scales, kb, count, buffer);
            for (int i = 0; i < m; i += 12) {
                int rows = m - i < 12 ? m - i : 12;
                ck_gemm_bf16_panel_block(rows, count, a + i * lda + 2 * kb, lda, buffer, c + i * ldc + column, ldc,
                                         accumulate || kb > 0, columns);
            }
        }
    }
}

void ck_gemm_int8(int m, int n, int k, const uint16_t *a, ptrdiff_t lda, const int8_t *packed, const float *scales,
                  float *c, ptrdiff_t ldc, int accumulate, int panel_begin, int panel_end) {
    ck_init_features();
    if (ck_use_avx512bf16) {
        gemm_int8_avx512(m, n, k, a, lda, packed, scales, c, ldc, accumulate, panel_begin, panel_end);
        return;
    }
    int pairs = (k + 1) / 2, groups = (k + CK_INT8_GROUP - 1) / CK_INT8_GROUP;
    size_t panel_size = (size_t)pairs * CK_PANEL * 2;
    uint16_t *buffer = malloc(panel_size * sizeof(uint16_t));
    if (!buffer) return;
    for (int panel = panel_begin; panel < panel_end; panel++) {
        int column = panel * CK_PANEL;
        widen_portable(packed + panel * panel_size, scales + (size_t)panel * groups * CK_PANEL, 0, pairs, buffer);
        ck_gemm_bf16_portable(m, n - column, k, a, lda, buffer, c + column, ldc, accumulate, 0, 1);
    }
    free(buffer);
}
