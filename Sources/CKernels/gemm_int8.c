// c = a Wᵀ over int8 panels: integer dot products of int8 + 128 activations with int8 weights per group of 64
// inputs (vpdpbusd, 64 multiply-adds an instruction), the +128 taken back with the group's weight sum, then scaled
// by the activation's and the weight's scales into f32 sums. Decoding reads half the bytes of bf16.
#include "ckernels.h"
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define CK_Q8_MR 4
#define CK_Q8_GROUPS 8     // groups per k block when many rows share the panels
#define CK_Q8_MC 192
#define CK_Q8_PANEL_GROUP 8
#define CK_QUADS_PER_GROUP (CK_INT8_GROUP / 4)

static inline int min_int(int a, int b) { return a < b ? a : b; }

#if defined(__x86_64__)
CK_TARGET_BF16 static inline __attribute__((always_inline)) void
kernel_q8(const int rows, int group_begin, int group_end, int quads, const uint8_t *a, ptrdiff_t lda,
          const float *a_scales, int groups, const int8_t *b, const float *w_scales, const int32_t *w_sums, float *c,
          ptrdiff_t ldc, int load, __mmask16 m0, __mmask16 m1) {
    __m512 acc0[CK_Q8_MR], acc1[CK_Q8_MR];
    for (int r = 0; r < rows; r++) {
        acc0[r] = load ? _mm512_maskz_loadu_ps(m0, c + r * ldc) : _mm512_setzero_ps();
        acc1[r] = load ? _mm512_maskz_loadu_ps(m1, c + r * ldc + 16) : _mm512_setzero_ps();
    }
    for (int g = group_begin; g < group_end; g++) {
        __m512i s0[CK_Q8_MR], s1[CK_Q8_MR];
        for (int r = 0; r < rows; r++) s0[r] = s1[r] = _mm512_setzero_si512();
        int q_end = min_int((g + 1) * CK_QUADS_PER_GROUP, quads);
        for (int q = g * CK_QUADS_PER_GROUP; q < q_end; q++) {
            _mm_prefetch((const char *)(b + q * 128) + 2048, _MM_HINT_T0);
            _mm_prefetch((const char *)(b + q * 128) + 2048 + 64, _MM_HINT_T0);
            __m512i b0 = _mm512_loadu_si512(b + q * 128), b1 = _mm512_loadu_si512(b + q * 128 + 64);
            for (int r = 0; r < rows; r++) {
                int32_t four;
                memcpy(&four, a + r * lda + 4 * q, 4);
                __m512i av = _mm512_set1_epi32(four);
                s0[r] = _mm512_dpbusd_epi32(s0[r], av, b0);
                s1[r] = _mm512_dpbusd_epi32(s1[r], av, b1);
            }
        }
        __m512i c0 = _mm512_slli_epi32(_mm512_loadu_si512(w_sums + g * CK_PANEL), 7);
        __m512i c1 = _mm512_slli_epi32(_mm512_loadu_si512(w_sums + g * CK_PANEL + 16), 7);
        __m512 w0 = _mm512_loadu_ps(w_scales + g * CK_PANEL), w1 = _mm512_loadu_ps(w_scales + g * CK_PANEL + 16);
        for (int r = 0; r < rows; r++) {
            __m512 sa = _mm512_set1_ps(a_scales[r * groups + g]);
            acc0[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(s0[r], c0)), _mm512_mul_ps(w0, sa), acc0[r]);
            acc1[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(s1[r], c1)), _mm512_mul_ps(w1, sa), acc1[r]);
        }
    }
    for (int r = 0; r < rows; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc0[r]);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc1[r]);
    }
}

#define CK_Q8_CASE(R)                                                                                            \
    case R:                                                                                                      \
        kernel_q8(R, group_begin, group_end, quads, a, lda, a_scales, groups, b, w_scales, w_sums, c, ldc, load, \
                  m0, m1);                                                                                       \
        break;

CK_TARGET_BF16 static void tile_q8(int rows, int group_begin, int group_end, int quads, const uint8_t *a,
                                   ptrdiff_t lda, const float *a_scales, int groups, const int8_t *b,
                                   const float *w_scales, const int32_t *w_sums, float *c, ptrdiff_t ldc, int load,
                                   int columns) {
    __mmask16 m0 = columns >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << columns) - 1);
    __mmask16 m1 = columns >= 32 ? (__mmask16)0xffff : columns > 16 ? (__mmask16)((1u << (columns - 16)) - 1) : 0;
    switch (rows) {
        CK_Q8_CASE(1) CK_Q8_CASE(2) CK_Q8_CASE(3) CK_Q8_CASE(4)
    default: break;
    }
}

CK_TARGET_BF16 static void gemm_int8_avx512(int m, int n, int k, const uint8_t *a, ptrdiff_t lda,
                                            const float *a_scales, const int8_t *packed, const float *scales,
                                            const int32_t *sums, float *c, ptrdiff_t ldc, int accumulate,
                                            int panel_begin, int panel_end) {
    int quads = (k + 3) / 4, groups = (k + CK_INT8_GROUP - 1) / CK_INT8_GROUP;
    size_t panel_size = (size_t)quads * CK_PANEL * 4, panel_scales = (size_t)groups * CK_PANEL;
    int group_block = m <= CK_Q8_MR ? groups : CK_Q8_GROUPS;
    int chunk_rows = m <= CK_Q8_MR ? m : CK_Q8_MC;
    for (int set = panel_begin; set < panel_end; set += CK_Q8_PANEL_GROUP) {
        int set_end = min_int(set + CK_Q8_PANEL_GROUP, panel_end);
        for (int chunk = 0; chunk < m; chunk += chunk_rows) {
            int chunk_end = min_int(chunk + chunk_rows, m);
            for (int gb = 0; gb < groups; gb += group_block) {
                int ge = min_int(gb + group_block, groups);
                int load = accumulate || gb > 0;
                for (int i = chunk; i < chunk_end; i += CK_Q8_MR) {
                    int rows = min_int(CK_Q8_MR, chunk_end - i);
                    for (int panel = set; panel < set_end; panel++) {
                        int column = panel * CK_PANEL;
                        tile_q8(rows, gb, ge, quads, a + i * lda, lda, a_scales + (size_t)i * groups, groups,
                                packed + panel * panel_size, scales + panel * panel_scales,
                                sums + panel * panel_scales, c + i * ldc + column, ldc, load,
                                min_int(CK_PANEL, n - column));
                    }
                }
            }
        }
    }
}

#endif

static void gemm_int8_portable(int m, int n, int k, const uint8_t *a, ptrdiff_t lda, const float *a_scales,
                               const int8_t *packed, const float *scales, const int32_t *sums, float *c,
                               ptrdiff_t ldc, int accumulate, int panel_begin, int panel_end) {
    int quads = (k + 3) / 4, groups = (k + CK_INT8_GROUP - 1) / CK_INT8_GROUP;
    size_t panel_size = (size_t)quads * CK_PANEL * 4, panel_scales = (size_t)groups * CK_PANEL;
    for (int panel = panel_begin; panel < panel_end; panel++) {
        int column = panel * CK_PANEL, columns = min_int(CK_PANEL, n - column);
        const int8_t *b = packed + panel * panel_size;
        for (int i = 0; i < m; i++) {
            float acc[CK_PANEL];
            for (int j = 0; j < CK_PANEL; j++) acc[j] = accumulate && j < columns ? c[i * ldc + column + j] : 0;
            for (int g = 0; g < groups; g++) {
                int32_t dot[CK_PANEL];
                for (int j = 0; j < CK_PANEL; j++) dot[j] = 0;
                int q_end = min_int((g + 1) * CK_QUADS_PER_GROUP, quads);
                for (int q = g * CK_QUADS_PER_GROUP; q < q_end; q++) {
                    const uint8_t *x = a + i * lda + 4 * q;
                    for (int j = 0; j < CK_PANEL; j++) {
                        const int8_t *w = b + q * 128 + j * 4;
                        dot[j] += x[0] * w[0] + x[1] * w[1] + x[2] * w[2] + x[3] * w[3];
                    }
                }
                float sa = a_scales[(size_t)i * groups + g];
                const float *ws = scales + panel * panel_scales + g * CK_PANEL;
                const int32_t *wsum = sums + panel * panel_scales + g * CK_PANEL;
                for (int j = 0; j < CK_PANEL; j++) acc[j] += (float)(dot[j] - 128 * wsum[j]) * (ws[j] * sa);
            }
            for (int j = 0; j < columns; j++) c[i * ldc + column + j] = acc[j];
        }
    }
}

void ck_gemm_int8(int m, int n, int k, const uint8_t *a, ptrdiff_t lda, const float *a_scales, const int8_t *packed,
                  const float *scales, const int32_t *sums, float *c, ptrdiff_t ldc, int accumulate, int panel_begin,
                  int panel_end) {
#if defined(__x86_64__)
    if (ck_fast_kernels()) {
        gemm_int8_avx512(m, n, k, a, lda, a_scales, packed, scales, sums, c, ldc, accumulate, panel_begin,
                         panel_end);
        return;
    }
#endif
    gemm_int8_portable(m, n, k, a, lda, a_scales, packed, scales, sums, c, ldc, accumulate, panel_begin,
                           panel_end);
}
